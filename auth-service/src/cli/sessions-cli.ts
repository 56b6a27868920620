import { userKeyFromArgument } from '../services/session-identity.js';
import { createSessionsRepo, type SessionRecord } from '../storage/sessions-repo.js';
import { checkUserOption, formatTable, parseCommand, reportCliError, withStore, type CliIo, type CommandSpec } from './cli-store.js';
import { CommandError } from './cli-text.js';

/**
 * The logic of `npm run sessions -- <command>` (the bin is sessions.ts): list and end server-side
 * sessions, in DATABASE_URL or the embedded store under DATA_DIR (as the users CLI).
 *
 * Exit codes: 0 done; 1 the command could not be carried out (unknown sid, store unavailable);
 * 2 usage error.
 */

const USAGE = `Usage: npm run sessions -- <command> [arguments]

Commands:
  list [--user U] [--all] [--json]   live sessions, newest first (--all: also revoked and expired)
  revoke <sid>                       end one session (the SID column of list)
  help                               show this text

<U> is a local username, or <source>:<name> for another source (tableau:kirk; oidc: or
azure:<subject id>), as in the access policy.
Ending a session is recorded in the audit trail (npm run audit -- tail). The gate does not consult
sessions yet: a copy of the cookie keeps passing it until the token expires (see the README).
`;

const COMMANDS: Record<string, CommandSpec> = {
  list: { options: { user: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } }, positionals: 0, names: '' },
  revoke: { options: {}, positionals: 1, names: '<sid>' },
};

const SID = /^[A-Za-z0-9_-]{16,128}$/;

function iso(d: Date | null): string {
  return d === null ? '-' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function stateOf(s: SessionRecord, nowMs: number): string {
  if (s.revokedAt !== null) return `revoked (${s.revokeReason})`;
  return s.expiresAt.getTime() <= nowMs ? 'expired' : 'live';
}

function toJson(s: SessionRecord, nowMs: number): Record<string, unknown> {
  return {
    sid: s.sid,
    user: s.username,
    userKey: s.userKey,
    source: s.source,
    src: s.src,
    state: s.revokedAt !== null ? 'revoked' : stateOf(s, nowMs),
    createdAt: s.createdAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
    idleExpiresAt: s.idleExpiresAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    revokedAt: s.revokedAt?.toISOString() ?? null,
    revokeReason: s.revokeReason,
    clientIp: s.clientIp,
    userAgent: s.userAgent,
    groupCount: s.groups.length,
  };
}

/** Runs one command and returns its exit code. Errors go to `stderr` as one line, never a stack. */
export async function runSessionsCli(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  try {
    const parsed = parseCommand(argv, COMMANDS);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    const { command, values, positionals } = parsed;

    if (command === 'revoke') {
      const sid = positionals[0]!;
      if (!SID.test(sid)) throw new CommandError(`invalid session id ${JSON.stringify(sid)}: copy it from the SID column of "list"`);
      await withStore(io, 'identity-gateway-sessions-cli', async (pool) => {
        const sessions = createSessionsRepo(pool);
        const before = await sessions.find(sid);
        if (before === null) throw new CommandError(`no session with id ${JSON.stringify(sid)}`);
        if (before.revokedAt !== null) {
          io.stdout.write(`Session ${sid} of ${before.username} was already revoked (${before.revokeReason}, ${iso(before.revokedAt)}).\n`);
          return;
        }
        await sessions.revoke(sid, { event: 'revoke', reason: 'sessions-cli' });
        io.stdout.write(`Revoked session ${sid} of ${before.username}.\n`);
      });
      return 0;
    }

    const user = checkUserOption(values.user);
    await withStore(io, 'identity-gateway-sessions-cli', async (pool) => {
      const nowMs = now();
      const rows = await createSessionsRepo(pool).list({ userKey: user === undefined ? undefined : userKeyFromArgument(user), includeEnded: values.all === true, nowMs });
      if (values.json === true) {
        io.stdout.write(`${JSON.stringify(rows.map((s) => toJson(s, nowMs)), null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        io.stdout.write(values.all === true ? 'No sessions.\n' : 'No live sessions.\n');
        return;
      }
      const header = ['SID', 'USER', 'SOURCE', 'CLIENT IP', 'CREATED', 'EXPIRES', 'STATE'];
      io.stdout.write(formatTable(header, rows.map((s) => [s.sid, s.username, s.src, s.clientIp, iso(s.createdAt), iso(s.expiresAt), stateOf(s, nowMs)])));
    });
    return 0;
  } catch (err) {
    return reportCliError(io, err);
  }
}
