import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { createAuditRepo } from '../storage/audit-repo.js';
import { createPool, runMigrations } from '../storage/db.js';
import { createSessionsRepo, type SessionsRepo } from '../storage/sessions-repo.js';
import { runAuditCli } from './audit-cli.js';
import { runSessionsCli } from './sessions-cli.js';

let database: FreshDatabase;
let pool: pg.Pool;
let sessions: SessionsRepo;
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);

type Run = typeof runSessionsCli;
async function run(fn: Run, argv: string[], env?: Record<string, string>, now: () => number = () => NOW) {
  let stdout = '';
  let stderr = '';
  const code = await fn(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: env ?? { DATABASE_URL: database.url } }, now);
  return { code, stdout, stderr };
}
const sessionsCli = (...argv: string[]) => run(runSessionsCli, argv);
// Audit rows are stamped by the database's clock, so --since is relative to the real one.
const auditCli = (...argv: string[]) => run(runAuditCli, argv, undefined, Date.now);

function open(sid: string, username: string, userKey: string, src: string, createdMs: number) {
  return sessions.open({ sid, username, userKey, source: src === 'local' ? 'local' : 'tableau', src, clientIp: '192.0.2.9', userAgent: 'UA', groups: ['g'], idpSid: null, nowMs: createdMs, idleSeconds: 600, maxSeconds: 3600, requestId: `req-${sid}` });
}

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 2 });
  await runMigrations(pool);
  sessions = createSessionsRepo(pool);
  await open('AAAAAAAAAAAAAAAAAAAAAA', 'Kirk', 'local:kirk', 'local', NOW - 60_000);
  await open('BBBBBBBBBBBBBBBBBBBBBB', 'kirk', 'tableau:kirk', 'tableau', NOW - 30_000);
  await open('CCCCCCCCCCCCCCCCCCCCCC', 'spock', 'local:spock', 'local', NOW - 2 * 3_600_000);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('sessions CLI', () => {
  it('lists live sessions newest first as a table', async () => {
    expect(await sessionsCli('list')).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'SID                     USER  SOURCE   CLIENT IP  CREATED               EXPIRES               STATE',
        'BBBBBBBBBBBBBBBBBBBBBB  kirk  tableau  192.0.2.9  2026-12-05T11:59:30Z  2026-12-05T12:59:30Z  live',
        'AAAAAAAAAAAAAAAAAAAAAA  Kirk  local    192.0.2.9  2026-12-05T11:59:00Z  2026-12-05T12:59:00Z  live',
        '',
      ].join('\n'),
    });
  });

  it('filters by user: a bare name is the local account, <source>:<name> another source; --all shows ended ones', async () => {
    expect((await sessionsCli('list', '--user', 'KIRK')).stdout).toMatch(/^SID.*\nAAAAAAAAAAAAAAAAAAAAAA .*\n$/);
    expect((await sessionsCli('list', '--user', 'tableau:kirk')).stdout).toMatch(/^SID.*\nBBBBBBBBBBBBBBBBBBBBBB .*\n$/);
    expect(await sessionsCli('list', '--user', 'spock')).toEqual({ code: 0, stdout: 'No live sessions.\n', stderr: '' });
    expect((await sessionsCli('list', '--user', 'spock', '--all')).stdout).toMatch(/CCCCCCCCCCCCCCCCCCCCCC .* expired\n$/);
  });

  it('prints JSON with --json', async () => {
    const result = await sessionsCli('list', '--json', '--user', 'kirk');
    expect(JSON.parse(result.stdout)).toEqual([
      expect.objectContaining({ sid: 'AAAAAAAAAAAAAAAAAAAAAA', user: 'Kirk', userKey: 'local:kirk', source: 'local', state: 'live', clientIp: '192.0.2.9', userAgent: 'UA', groupCount: 1, revokedAt: null }),
    ]);
  });

  it('revokes one session with an audit event, and says so when it was already revoked', async () => {
    expect(await sessionsCli('revoke', 'AAAAAAAAAAAAAAAAAAAAAA')).toEqual({ code: 0, stdout: 'Revoked session AAAAAAAAAAAAAAAAAAAAAA of Kirk.\n', stderr: '' });
    expect((await sessions.find('AAAAAAAAAAAAAAAAAAAAAA'))!.revokeReason).toBe('sessions-cli');
    const again = await sessionsCli('revoke', 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Session AAAAAAAAAAAAAAAAAAAAAA of Kirk was already revoked \(sessions-cli, /);
    expect((await sessionsCli('list', '--user', 'kirk', '--all')).stdout).toContain('revoked (sessions-cli)');
  });

  it("revokes a session whose id starts with '-' (base64url), with or without '--'", async () => {
    await open('-DDDDDDDDDDDDDDDDDDDDD', 'uhura', 'local:uhura', 'local', NOW - 10_000);
    await open('-EEEEEEEEEEEEEEEEEEEEE', 'uhura', 'local:uhura', 'local', NOW - 10_000);
    expect(await sessionsCli('revoke', '-DDDDDDDDDDDDDDDDDDDDD')).toEqual({ code: 0, stdout: 'Revoked session -DDDDDDDDDDDDDDDDDDDDD of uhura.\n', stderr: '' });
    expect(await sessionsCli('revoke', '--', '-EEEEEEEEEEEEEEEEEEEEE')).toEqual({ code: 0, stdout: 'Revoked session -EEEEEEEEEEEEEEEEEEEEE of uhura.\n', stderr: '' });
  });

  it.each([
    ['an unknown sid', ['revoke', 'ZZZZZZZZZZZZZZZZZZZZZZ'], 1, 'error: no session with id "ZZZZZZZZZZZZZZZZZZZZZZ"\n'],
    ['a malformed sid', ['revoke', 'a b'], 1, 'error: invalid session id "a b": copy it from the SID column of "list"\n'],
    ['no command', [], 2, 'error: no command given (try "help")\n'],
    ['an unknown command', ['kill'], 2, 'error: unknown command "kill" (try "help")\n'],
    ['revoke without a sid', ['revoke'], 2, 'error: "revoke" needs <sid>\n'],
    ['an unknown option', ['list', '--everything'], 2, 'error: unknown option --everything for "list"\n'],
  ])('%s: exit %s with one line', async (_name, argv, code, stderr) => {
    expect(await sessionsCli(...argv)).toEqual({ code, stdout: '', stderr });
  });

  it('says which store it could not reach (exit 1)', async () => {
    const result = await run(runSessionsCli, ['list'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: The user store is unavailable\. Try again shortly\. \(.*ECONNREFUSED.*\)\n$/);
  });
});

describe('audit CLI', () => {
  beforeAll(async () => {
    const audit = createAuditRepo(pool);
    await audit.record({ event: 'login_failure', username: 'KIRK', source: 'local', clientIp: '203.0.113.5', requestId: 'att-1', reason: 'invalid', app: 'finance' });
    await audit.record({ event: 'login_failure', username: 'evil\u001b[31mname', source: 'local', reason: 'not-found' });
    await pool.query("INSERT INTO auth_events (at, event, username, user_key, reason) VALUES (now() - interval '3 hours', 'logout', 'Kirk', 'local:kirk', 'old-one')");
  });

  it('tails one user: the account events and the attempts made under its name, oldest first', async () => {
    const result = await auditCli('tail', '--user', 'kirk', '--json');
    expect(result.code).toBe(0);
    const rows = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => [r.event, r.reason])).toEqual([
      ['logout', 'old-one'],
      ['login_success', null],
      ['revoke', 'sessions-cli'],
      ['login_failure', 'invalid'],
    ]);
    expect(rows[3]).toMatchObject({ user: 'KIRK', userKey: null, clientIp: '203.0.113.5', requestId: 'att-1', app: 'finance' });
    expect(rows[0]).toMatchObject({ app: null });
  });

  it('limits to --since (relative or ISO) and --limit', async () => {
    const recent = (await auditCli('tail', '--user', 'kirk', '--since', '1h', '--json')).stdout.trim().split('\n');
    expect(recent.map((l) => (JSON.parse(l) as { reason: unknown }).reason)).not.toContain('old-one');
    expect((await auditCli('tail', '--since', '2999-01-01')).stdout).toBe('No events.\n');
    expect((await auditCli('tail', '--limit', '1', '--json')).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('prints a table without the control characters a client typed', async () => {
    const result = await auditCli('tail', '--limit', '2');
    expect(result.stdout.split('\n')[0]).toMatch(/^TIME +EVENT +USER +SOURCE +APP +CLIENT IP +SID +REASON +REQUEST ID$/);
    expect(result.stdout).toContain('evil?[31mname');
    expect(result.stdout).not.toContain('\u001b');
  });

  it.each([
    ['a bad --since', ['tail', '--since', 'yesterday'], /^error: --since must be like 30m, 1h, 7d or an ISO date \(received "yesterday"\)\n$/],
    ['a bad --limit', ['tail', '--limit', '0'], /^error: --limit must be a whole number from 1 to 10000/],
    ['an unknown command', ['head'], /^error: unknown command "head"/],
    ['an extra argument', ['tail', 'kirk'], /^error: unexpected argument "kirk" for "tail"/],
  ])('%s is a usage error (exit 2)', async (_name, argv, message) => {
    const result = await auditCli(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
