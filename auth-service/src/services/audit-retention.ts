/**
 * The retention job: once at start (as soon as the store is ready) and then daily, deletes audit
 * events older than AUDIT_RETENTION_DAYS and server-side sessions that ended longer ago than that.
 */
import type { Logger } from 'pino';
import { errorSummary } from '../logger.js';
import type { AuditRepo } from '../storage/audit-repo.js';
import type { SessionsRepo } from '../storage/sessions-repo.js';

export const RETENTION_INTERVAL_MS = 24 * 60 * 60 * 1000;

export interface RetentionDeps {
  audit: Pick<AuditRepo, 'purge'>;
  sessions: Pick<SessionsRepo, 'purgeEnded'>;
  retentionDays: number;
  logger: Logger;
}

/** One purge. Never throws: a failure is logged and the next run tries again. */
export async function purgeExpiredRecords(deps: RetentionDeps): Promise<{ events: number; sessions: number } | null> {
  try {
    const events = await deps.audit.purge(deps.retentionDays);
    const sessions = await deps.sessions.purgeEnded(deps.retentionDays);
    deps.logger.info({ event: 'retention_purge', retention_days: deps.retentionDays, audit_events: events, sessions }, 'old audit events and ended sessions deleted');
    return { events, sessions };
  } catch (err) {
    deps.logger.warn({ event: 'retention_purge_failed', retention_days: deps.retentionDays, err: errorSummary(err) }, 'retention purge failed; the next run tries again');
    return null;
  }
}

/**
 * Runs the purge when `ready` resolves, then every `intervalMs` (default daily). The timer does not
 * keep the process alive. `stop()` cancels the next runs.
 */
export function startRetentionJob(deps: RetentionDeps & { ready: Promise<void>; intervalMs?: number }): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  void deps.ready.then(async () => {
    if (stopped) return;
    await purgeExpiredRecords(deps);
    if (stopped) return;
    timer = setInterval(() => void purgeExpiredRecords(deps), deps.intervalMs ?? RETENTION_INTERVAL_MS);
    timer.unref();
  });
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
