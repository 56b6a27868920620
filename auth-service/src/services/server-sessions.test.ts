import { describe, expect, test } from '@jest/globals';
import pino from 'pino';
import type { AuditRepo } from '../storage/audit-repo.js';
import type { SessionsRepo } from '../storage/sessions-repo.js';
import { purgeExpiredRecords } from './audit-retention.js';
import { createServerSessions } from './server-sessions.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'trace', base: null }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { logger, lines };
}

const never = (): Promise<never> => new Promise<never>(() => undefined);
const refuse = (): Promise<never> => Promise.reject(new Error('database on fire'));
const hangingAudit: AuditRepo = { record: never, tail: never, purge: never };
const hangingSessions = { open: never, find: never, revoke: never, revokeUser: never, revokeByIdpSid: never, list: never, purgeEnded: never } as unknown as SessionsRepo;

function service(opts: { audit?: AuditRepo; sessions?: SessionsRepo; ready?: boolean } = {}) {
  const { logger, lines } = capture();
  const sessions = createServerSessions({
    sessions: opts.sessions ?? hangingSessions,
    audit: opts.audit ?? hangingAudit,
    lifetimes: { maxSeconds: 3600, idleSeconds: 600 },
    logger,
    now: () => 1_800_000_000_000,
    storeReady: () => opts.ready ?? true,
    eventTimeoutMs: 100,
  });
  return { sessions, lines };
}

describe('server sessions: the audit never holds a response up for long', () => {
  test('a database that does not answer delays a failure event by the bound only, and the miss is logged', async () => {
    const { sessions, lines } = service();
    const started = Date.now();
    await sessions.recordEvent({ event: 'login_failure', username: 'kirk', requestId: 'r1' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(lines).toContainEqual(expect.objectContaining({ event: 'audit_write_failed', reason: 'timeout', audit_event: 'login_failure', request_id: 'r1' }));
  });

  test('a revocation at logout that does not answer gives up after the bound and reports false', async () => {
    const { sessions } = service();
    expect(await sessions.end('some-session-id-00001', { event: 'logout', reason: 'logout' })).toBe(false);
  });

  test('a store that is not migrated yet skips events and refuses to open a session (503)', async () => {
    const { sessions, lines } = service({ ready: false });
    await sessions.recordEvent({ event: 'rate_limited', username: 'kirk' });
    expect(lines).toContainEqual(expect.objectContaining({ event: 'audit_skipped', reason: 'store-not-ready' }));
    const claims = { sub: 's', username: 'kirk', groups: [], src: 'local', ip: '192.0.2.1', sid: 'x'.repeat(22), iat: 1, exp: 2 };
    await expect(sessions.open(claims, { clientIp: '192.0.2.1', userAgent: null, requestId: 'r' })).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', status: 503 });
  });
});

describe('retention purge', () => {
  test('a failing purge is logged and does not throw; the next run tries again', async () => {
    const { logger, lines } = capture();
    const result = await purgeExpiredRecords({ audit: { purge: refuse }, sessions: { purgeEnded: refuse }, retentionDays: 90, logger });
    expect(result).toBeNull();
    expect(lines).toContainEqual(expect.objectContaining({ event: 'retention_purge_failed', retention_days: 90 }));
  });
});
