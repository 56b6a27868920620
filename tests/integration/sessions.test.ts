/**
 * Server-side sessions, revocation and the audit trail through the real stack: the repo's nginx,
 * the auth service, PostgreSQL, and the operator CLIs run against the same database.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { PassThrough, Readable } from 'node:stream';
import { runAuditCli } from '../../auth-service/src/cli/audit-cli.js';
import { runSessionsCli } from '../../auth-service/src/cli/sessions-cli.js';
import { runUsersCli } from '../../auth-service/src/cli/users-cli.js';
import { startAuthService } from '../../auth-service/src/main.js';
import { createPool, runMigrations } from '../../auth-service/src/storage/db.js';
import { createFreshDatabase } from '../support/fresh-database.js';
import { stackTest, startStack, strongSecret, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';
import { waitUntil } from '../support/wait.js';

const PASSWORD = 'sessions test password 42';

function sidOf(session: string): string {
  const payload = session.split('=')[1]!.split('.')[1]!;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid: string }).sid;
}

async function cli(run: typeof runSessionsCli, argv: string[], databaseUrl: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { DATABASE_URL: databaseUrl } };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

const usersCli = (argv: string[], url: string) => cli((a, io) => runUsersCli(a, { ...io, stdin: Readable.from([]) }), argv, url);

describe('server-side sessions through the real stack', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack();
    for (const name of ['kirk', 'spock', 'uhura', 'sulu']) await stack.createUser(name, PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  async function row(sid: string): Promise<Record<string, unknown> | undefined> {
    return (await stack.pool.query('SELECT * FROM sessions WHERE sid = $1', [sid])).rows[0];
  }
  async function events(sid: string): Promise<string[]> {
    return (await stack.pool.query<{ event: string }>('SELECT event FROM auth_events WHERE sid = $1 ORDER BY id', [sid])).rows.map((r) => r.event);
  }
  const about = (session: string) => stack.request('GET', '/auth/about', { accept: 'application/json', cookie: session });

  test('a sign-in through nginx opens the session row and writes login_success before the cookie arrives', async () => {
    const { res, session } = await stack.login('kirk', PASSWORD, '/');
    expect(res.status).toBe(302);
    const sid = sidOf(session!);
    expect(await row(sid)).toMatchObject({ username: 'kirk', user_key: 'local:kirk', source: 'local', client_ip: '127.0.0.1', revoked_at: null, groups: ['Federation'] });
    expect(await events(sid)).toEqual(['login_success']);
    const failed = await stack.login('kirk', 'not the password');
    expect(failed.res.status).toBe(401);
    const failures = await stack.pool.query("SELECT username, reason FROM auth_events WHERE event = 'login_failure'");
    expect(failures.rows).toContainEqual({ username: 'kirk', reason: 'invalid' });
  });

  test('POST /logout revokes the server session; /auth/about then says signed out', async () => {
    const { session } = await stack.login('spock', PASSWORD, '/');
    const sid = sidOf(session!);
    expect((await about(session!)).status).toBe(404); // live, but not a Tableau session
    const out = await stack.request('POST', '/logout', { cookie: session!, origin: stack.baseUrl, 'sec-fetch-site': 'same-origin' });
    expect(out.status).toBe(303);
    expect(await row(sid)).toMatchObject({ revoke_reason: 'logout', revoked_at: expect.any(Date) });
    expect(await events(sid)).toEqual(['login_success', 'logout']);
    const after = await about(session!);
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toMatchObject({ error: 'unauthenticated', reason: 'session-ended' });
  });

  // The bound documented in the README: the gate checks only the token, so a copy of a revoked
  // session's cookie passes until the token's exp (SESSION_TOKEN_TTL_SECONDS); its renewal is then
  // refused (tests/integration/silent-renewal.test.ts proves the second half with a 2 s token).
  test('within its token lifetime a revoked session still passes the gate (the documented bound), while the service already refuses it', async () => {
    const { session } = await stack.login('uhura', PASSWORD, '/');
    expect((await usersCli(['revoke', 'uhura'], stack.databaseUrl)).code).toBe(0);
    const page = await stack.request('GET', '/', { accept: 'text/html', cookie: session! });
    expect(page.status).toBe(200);
    expect((await about(session!)).status).toBe(401);
  });

  test('users revoke and users disable end every session of the user, with their audit events', async () => {
    const a = sidOf((await stack.login('sulu', PASSWORD, '/')).session!);
    const b = sidOf((await stack.login('SULU', PASSWORD, '/')).session!);
    expect(await usersCli(['revoke', 'sulu'], stack.databaseUrl)).toMatchObject({ code: 0, stdout: 'Signed sulu out everywhere (2 sessions ended).\n' });
    for (const sid of [a, b]) expect(await row(sid)).toMatchObject({ revoke_reason: 'sign-out-everywhere' });

    const c = sidOf((await stack.login('sulu', PASSWORD, '/')).session!);
    expect(await usersCli(['disable', 'sulu'], stack.databaseUrl)).toMatchObject({ code: 0, stdout: 'Disabled sulu (1 session ended).\n' });
    expect(await row(c)).toMatchObject({ revoke_reason: 'user-disabled' });
    expect(await events(c)).toEqual(['login_success', 'revoke']);
    // Disabled: the next sign-in fails and is audited.
    expect((await stack.login('sulu', PASSWORD, '/')).res.status).toBe(401);
    const tail = await cli(runAuditCli, ['tail', '--user', 'sulu', '--json'], stack.databaseUrl);
    expect(tail.code).toBe(0);
    const rows = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; reason: string | null });
    expect(rows.map((r) => r.event)).toEqual(['login_success', 'login_success', 'revoke', 'revoke', 'login_success', 'disable', 'revoke', 'login_failure']);
    expect(rows.at(-1)!.reason).toBe('disabled');
    expect(tail.stdout).not.toContain(PASSWORD);
  });

  test('sessions list shows the live sessions; sessions revoke ends one', async () => {
    const sid = sidOf((await stack.login('kirk', PASSWORD, '/')).session!);
    const list = await cli(runSessionsCli, ['list', '--user', 'kirk'], stack.databaseUrl);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\n${sid} +kirk +local +127\\.0\\.0\\.1 .* live\\n`));
    expect(await cli(runSessionsCli, ['revoke', sid], stack.databaseUrl)).toEqual({ code: 0, stdout: `Revoked session ${sid} of kirk.\n`, stderr: '' });
    expect((await cli(runSessionsCli, ['list', '--user', 'kirk', '--json'], stack.databaseUrl)).stdout).not.toContain(sid);
    expect(await cli(runSessionsCli, ['revoke', 'nosuchsessionid000000'], stack.databaseUrl)).toMatchObject({ code: 1, stderr: 'error: no session with id "nosuchsessionid000000"\n' });
  });
});

describe('server-side sessions on the embedded store (PGlite)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ store: 'embedded' });
    await stack.createUser('chekov', PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('sign-in stores the session, the CLIs list and revoke it, and logout revokes the next one', async () => {
    const first = sidOf((await stack.login('chekov', PASSWORD, '/')).session!);
    const list = await cli(runSessionsCli, ['list', '--user', 'chekov'], stack.databaseUrl);
    expect(list.stdout).toContain(first);
    expect(await usersCli(['revoke', 'chekov'], stack.databaseUrl)).toMatchObject({ code: 0, stdout: 'Signed chekov out everywhere (1 session ended).\n' });
    const { session } = await stack.login('chekov', PASSWORD, '/');
    await stack.request('POST', '/logout', { cookie: session!, origin: stack.baseUrl, 'sec-fetch-site': 'same-origin' });
    const rows = await stack.pool.query<{ sid: string; revoke_reason: string }>('SELECT sid, revoke_reason FROM sessions ORDER BY created_at');
    expect(rows.rows).toEqual([
      { sid: first, revoke_reason: 'sign-out-everywhere' },
      { sid: sidOf(session!), revoke_reason: 'logout' },
    ]);
  });
});

describe('the session store fails between the source and the cookie', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    tableau = await startTableauFake({ users: [{ name: 'tina', password: 'tableau only password 7', siteRole: 'Viewer', groups: ['Analysts'] }] });
    // Tableau alone decides, so the sign-in itself needs no database: only the session row does.
    stack = await startStack({ cuttableStore: true, env: { TABLEAU_URL: tableau.url, AUTH_CHAIN: 'tableau', ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '3000' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  test('database down at sign-in: 503 page, no session cookie, the Tableau session is signed out, nothing half-written', async () => {
    const ok = await stack.login('tina', 'tableau only password 7', '/');
    expect(ok.res.status).toBe(302);
    expect(await stack.pool.query("SELECT 1 FROM sessions WHERE source = 'tableau'")).toMatchObject({ rowCount: 1 });

    await stack.dbRelay!.cut();
    const signIns = tableau.signIns().length;
    const down = await stack.login('tina', 'tableau only password 7', '/');
    expect(tableau.signIns().length).toBe(signIns + 1);
    expect(down.res.status).toBe(503);
    expect(down.res.body).toMatch(/temporarily unavailable/i);
    expect(down.session).toBeNull();
    expect(await waitUntil(() => tableau.signedOutTokens().includes(tableau.issuedTokens().at(-1)!), 5000)).toBe(true);
    await stack.dbRelay!.restore();
    expect((await stack.pool.query("SELECT count(*)::int AS n FROM sessions WHERE source = 'tableau'")).rows[0].n).toBe(1);
    expect((await stack.pool.query("SELECT count(*)::int AS n FROM auth_events WHERE event = 'login_success'")).rows[0].n).toBe(1);
  }, 30_000);
});

describe('audit retention', () => {
  test('the service deletes events older than AUDIT_RETENTION_DAYS and long-ended sessions when it starts', async () => {
    const db = await createFreshDatabase();
    const pool = createPool(db.url, { max: 2 });
    const logStream = new PassThrough();
    let logs = '';
    logStream.on('data', (c: Buffer) => (logs += c.toString('utf8')));
    let service: Awaited<ReturnType<typeof startAuthService>> | undefined;
    try {
      await runMigrations(pool);
      await pool.query(`INSERT INTO auth_events (at, event, username, reason) VALUES
        (now() - interval '31 days', 'login_failure', 'old', 'invalid'),
        (now() - interval '29 days', 'login_failure', 'recent', 'invalid')`);
      await pool.query(`INSERT INTO sessions (sid, username, user_key, source, src, created_at, idle_expires_at, expires_at, client_ip) VALUES
        ('ended-long-ago-000001', 'old', 'local:old', 'local', 'local', now() - interval '40 days', now() - interval '40 days', now() - interval '40 days', '192.0.2.1'),
        ('still-live-0000000001', 'new', 'local:new', 'local', 'local', now(), now() + interval '1 hour', now() + interval '2 hours', '192.0.2.1')`);
      service = await startAuthService(
        { DATABASE_URL: db.url, JWT_SECRET: strongSecret(), AUTH_PORT: '0', AUDIT_RETENTION_DAYS: '30', LOG_LEVEL: 'info' },
        { logStream },
      );
      expect(await waitUntil(() => logs.includes('"retention_purge"'), 10_000)).toBe(true);
      expect((await pool.query('SELECT username FROM auth_events')).rows).toEqual([{ username: 'recent' }]);
      expect((await pool.query('SELECT sid FROM sessions')).rows).toEqual([{ sid: 'still-live-0000000001' }]);
      expect(logs).toMatch(/"retention_purge".*"audit_events":1,"sessions":1/);
    } finally {
      await service?.close();
      await pool.end();
      await db.drop();
    }
  }, 30_000);
});
