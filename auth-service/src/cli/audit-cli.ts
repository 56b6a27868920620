import { auditUserFromArgument } from '../services/session-identity.js';
import { createAuditRepo, type AuthEventRecord } from '../storage/audit-repo.js';
import { checkUserOption, formatTable, parseCommand, reportCliError, withStore, type CliIo, type CommandSpec } from './cli-store.js';
import { UsageError } from './cli-text.js';

/**
 * The logic of `npm run audit -- tail` (the bin is audit.ts): the newest rows of the append-only
 * audit trail, in DATABASE_URL or the embedded store under DATA_DIR (as the users CLI).
 *
 * Exit codes: 0 done; 1 the store is unavailable; 2 usage error (bad --since, --limit, …).
 */

const USAGE = `Usage: npm run audit -- tail [--user U] [--since 1h] [--limit N] [--json]

  --user U     events of that account, and sign-in attempts made under its name; U is a local
               username, or <source>:<name> (tableau:kirk; oidc: or azure:<subject id>)
  --since D    only events of the last D: a number and s, m, h or d (30m, 1h, 7d), or an ISO
               date/time (2026-12-01T08:00Z)
  --limit N    at most the newest N events (default 100, at most 10000)
  --json       one JSON object per line instead of a table

Events: login_success, login_failure, rate_limited, logout, revoke, disable. Rows are kept
AUDIT_RETENTION_DAYS days (default 90).
`;

const COMMANDS: Record<string, CommandSpec> = {
  tail: { options: { user: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } }, positionals: 0, names: '' },
};

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `1h` → now − 1 h; an ISO date or date-time → that instant. Null when it is neither. */
export function parseSince(text: string, nowMs: number): Date | null {
  const relative = /^([0-9]{1,6})([smhd])$/.exec(text);
  if (relative) return new Date(nowMs - Number(relative[1]) * UNIT_MS[relative[2]!]!);
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) return null;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? null : at;
}

function cell(value: string | null): string {
  // Anything a client typed (attempted usernames) is shown without control characters.
  return value === null || value === '' ? '-' : value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function toJson(e: AuthEventRecord): Record<string, unknown> {
  return { at: e.at.toISOString(), event: e.event, user: e.username, userKey: e.userKey, source: e.source, clientIp: e.clientIp, requestId: e.requestId, sid: e.sid, reason: e.reason, app: e.app };
}

/** Runs one command and returns its exit code. Errors go to `stderr` as one line, never a stack. */
export async function runAuditCli(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  try {
    const parsed = parseCommand(argv, COMMANDS);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    const { values } = parsed;
    const sinceText = values.since as string | undefined;
    const since = sinceText === undefined ? undefined : parseSince(sinceText, now());
    if (since === null) throw new UsageError(`--since must be like 30m, 1h, 7d or an ISO date (received ${JSON.stringify(sinceText)})`);
    const limitText = (values.limit as string | undefined) ?? '100';
    if (!/^[0-9]{1,5}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 10_000) {
      throw new UsageError(`--limit must be a whole number from 1 to 10000 (received ${JSON.stringify(limitText)})`);
    }
    const user = checkUserOption(values.user);

    await withStore(io, 'identity-gateway-audit-cli', async (pool) => {
      const events = await createAuditRepo(pool).tail({ user: user === undefined ? undefined : auditUserFromArgument(user), since, limit: Number(limitText) });
      if (values.json === true) {
        io.stdout.write(events.map((e) => `${JSON.stringify(toJson(e))}\n`).join(''));
        return;
      }
      if (events.length === 0) {
        io.stdout.write('No events.\n');
        return;
      }
      const header = ['TIME', 'EVENT', 'USER', 'SOURCE', 'APP', 'CLIENT IP', 'SID', 'REASON', 'REQUEST ID'];
      io.stdout.write(
        formatTable(
          header,
          events.map((e) => [e.at.toISOString().replace(/\.\d{3}Z$/, 'Z'), e.event, cell(e.username), cell(e.source), cell(e.app), cell(e.clientIp), cell(e.sid), cell(e.reason), cell(e.requestId)]),
        ),
      );
    });
    return 0;
  } catch (err) {
    return reportCliError(io, err);
  }
}
