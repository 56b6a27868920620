/**
 * Server-side sessions and the audit trail through the app over real HTTP and a real PostgreSQL:
 * what each sign-in, failure, rate-limit hit and sign-out leaves in `sessions` and `auth_events`.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, test } from '@jest/globals';
import { appsOnTestDatabase, decodeSegment, FIXED_NOW_MS, setCookies } from './app.testkit.js';
import { NO_PAYLOAD_GROUPS } from './services/group-selection.js';
import { createAuditRepo } from './storage/audit-repo.js';
import { createPool } from './storage/db.js';
import { createSessionsRepo } from './storage/sessions-repo.js';

const NO_LIMITS = { LOGIN_RATE_LIMIT_IP: '100000/60', LOGIN_RATE_LIMIT_USER: '100000/60', LOGIN_RATE_LIMIT_USER_IP: '100000/60' };

const apps = appsOnTestDatabase((db) => db.createUser('alice', 'correct horse battery', { groups: ['staff', 'admins'] }), { env: NO_LIMITS });
const start = apps.start;

function sessionTokenOf(res: { headers: Record<string, unknown> }): string | null {
  const cookie = setCookies(res as never).find((c) => c.startsWith('gw_session=') && !c.startsWith('gw_session=;'));
  return cookie ? cookie.slice('gw_session='.length).split(';')[0]! : null;
}

async function eventsWhere(where: string, params: unknown[]): Promise<Array<Record<string, unknown>>> {
  return (await apps.db.pool.query(`SELECT event, username, user_key, source, client_ip, request_id, sid, reason FROM auth_events WHERE ${where} ORDER BY id`, params)).rows;
}

describe('sign-in opens a server-side session', () => {
  test('the session row and its login_success event exist when the cookie arrives, with both lifetimes', async () => {
    const app = await start({ env: { ...NO_LIMITS, SESSION_MAX_SECONDS: '7200', SESSION_IDLE_SECONDS: '600' } });
    const res = await app.login('ALICE', 'correct horse battery', { headers: { 'x-request-id': 'login-1', 'user-agent': 'TestBrowser/1.0' } });
    expect(res.status).toBe(302);
    const sid = decodeSegment(sessionTokenOf(res)!.split('.')[1]!).sid as string;
    expect(sid).toMatch(/^[A-Za-z0-9_-]{22}$/); // 128 random bits
    const row = await createSessionsRepo(apps.db.pool).find(sid);
    expect(row).toMatchObject({ username: 'alice', userKey: 'local:alice', source: 'local', src: 'local', clientIp: '127.0.0.1', userAgent: 'TestBrowser/1.0', groups: ['staff', 'admins'], revokedAt: null });
    expect(row!.createdAt.getTime()).toBe(FIXED_NOW_MS);
    expect(row!.idleExpiresAt.getTime()).toBe(FIXED_NOW_MS + 600_000);
    expect(row!.expiresAt.getTime()).toBe(FIXED_NOW_MS + 7_200_000);
    expect(await eventsWhere('sid = $1', [sid])).toEqual([
      { event: 'login_success', username: 'alice', user_key: 'local:alice', source: 'local', client_ip: '127.0.0.1', request_id: 'login-1', sid, reason: null },
    ]);
  });

  test('a session store that cannot be written: 503 page, no session cookie, and the failure is logged', async () => {
    // Users come from the live database; sessions go to a port where nothing listens.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const dead = createPool(`postgres://postgres@127.0.0.1:${port}/nothing`, { connectionTimeoutMillis: 500, logger: { warn: () => undefined } });
    try {
      const app = await start({ deps: { storage: { sessions: createSessionsRepo(dead), audit: createAuditRepo(dead) } } });
      const res = await app.login('alice', 'correct horse battery', { headers: { 'x-request-id': 'login-dead' } });
      expect(res.status).toBe(503);
      expect(res.body).toContain('Sign-in is temporarily unavailable');
      expect(sessionTokenOf(res)).toBeNull();
      expect(app.events('auth_error')).toContainEqual(expect.objectContaining({ reason: 'session-not-stored', user: 'alice', request_id: 'login-dead' }));
    } finally {
      await dead.end();
    }
  });

  test('without a session store at all, sign-in fails closed with 503', async () => {
    const app = await start({ deps: { storage: undefined } });
    const res = await app.login('alice', 'correct horse battery');
    expect(res.status).toBe(503);
    expect(sessionTokenOf(res)).toBeNull();
  });
});

describe('failures and rate-limit hits are audited, never with the password', () => {
  test('a wrong password and an unknown user each leave a login_failure row with the typed name', async () => {
    const app = await start();
    await app.login('alice', 'not the password 1', { headers: { 'x-request-id': 'fail-1' } });
    await app.login('nobody-here', 'not the password 2', { headers: { 'x-request-id': 'fail-2' } });
    expect(await eventsWhere("request_id IN ('fail-1', 'fail-2')", [])).toEqual([
      expect.objectContaining({ event: 'login_failure', username: 'alice', user_key: null, source: 'local', reason: 'invalid' }),
      expect.objectContaining({ event: 'login_failure', username: 'nobody-here', reason: 'not-found' }),
    ]);
    const everything = JSON.stringify((await apps.db.pool.query('SELECT * FROM auth_events')).rows);
    expect(everything).not.toContain('not the password');
  });

  test('a rate-limit hit leaves a rate_limited row', async () => {
    const app = await start({ env: { ...NO_LIMITS, LOGIN_RATE_LIMIT_IP: '1/60' } });
    await app.login('alice', 'wrong once');
    const res = await app.login('alice', 'wrong twice', { headers: { 'x-request-id': 'limited-1' } });
    expect(res.status).toBe(429);
    expect(await eventsWhere("request_id = 'limited-1'", [])).toEqual([expect.objectContaining({ event: 'rate_limited', username: 'alice', reason: 'rate-limited-ip' })]);
  });
});

describe('sign-out revokes', () => {
  test('POST /logout revokes the server session with a logout event, and /auth/about then says signed out', async () => {
    const app = await start();
    const token = sessionTokenOf(await app.login('alice', 'correct horse battery'))!;
    const sid = decodeSegment(token.split('.')[1]!).sid as string;
    const about = () => app.request('GET', '/auth/about', { cookie: `gw_session=${token}` });
    // A local session is live but has no Tableau details to give.
    expect((await about()).status).toBe(404);

    const res = await app.request('POST', '/logout', {
      host: `127.0.0.1:${app.port}`,
      origin: `http://127.0.0.1:${app.port}`,
      cookie: `gw_session=${token}`,
      'x-request-id': 'logout-1',
    });
    expect(res.status).toBe(303);
    const row = await createSessionsRepo(apps.db.pool).find(sid);
    expect(row?.revokedAt).toBeInstanceOf(Date);
    expect(row?.revokeReason).toBe('logout');
    expect(await eventsWhere('sid = $1', [sid])).toContainEqual(expect.objectContaining({ event: 'logout', request_id: 'logout-1', reason: 'logout' }));

    const after = await about();
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toEqual({ error: 'unauthenticated', reason: 'session-ended', login: '/login' });
  });

  test('/auth/about treats a token whose session was never stored as signed out', async () => {
    const app = await start();
    const token = sessionTokenOf(await app.login('alice', 'correct horse battery'))!;
    const sid = decodeSegment(token.split('.')[1]!).sid as string;
    await apps.db.pool.query('DELETE FROM sessions WHERE sid = $1', [sid]);
    expect((await app.request('GET', '/auth/about', { cookie: `gw_session=${token}` })).status).toBe(401);
  });
});

describe('the app a sign-in came through (X-Gateway-App, issue 12)', () => {
  const withApps = { groupSelection: () => ({ policyGroups: new Set<string>(), payload: NO_PAYLOAD_GROUPS, policyApps: new Set(['finance']) }) };
  const appOf = async (requestId: string) => (await apps.db.pool.query('SELECT event, app FROM auth_events WHERE request_id = $1 ORDER BY id', [requestId])).rows;

  test('records an app of the policy on login_success and login_failure', async () => {
    const app = await start({ deps: withApps });
    await app.login('alice', 'correct horse battery', { headers: { 'x-request-id': 'app-login-1', 'x-gateway-app': 'finance' } });
    expect(await appOf('app-login-1')).toEqual([{ event: 'login_success', app: 'finance' }]);
    await app.login('alice', 'wrong', { headers: { 'x-request-id': 'app-login-2', 'x-gateway-app': 'finance' } });
    expect(await appOf('app-login-2')).toEqual([{ event: 'login_failure', app: 'finance' }]);
  });

  test('records the default app (null) without the header', async () => {
    const app = await start({ deps: withApps });
    await app.login('alice', 'correct horse battery', { headers: { 'x-request-id': 'app-login-3' } });
    expect(await appOf('app-login-3')).toEqual([{ event: 'login_success', app: null }]);
  });

  test.each([
    ['an app the policy lacks', 'payroll'],
    ['a name that is not an app name', 'Finance; DROP TABLE'],
    ['an over-long name', 'a'.repeat(40)],
  ])('never records %s: null, a warning, and the sign-in still works', async (_name, value) => {
    const app = await start({ deps: withApps });
    const requestId = `app-login-bad-${value.length}`;
    const res = await app.login('alice', 'correct horse battery', { headers: { 'x-request-id': requestId, 'x-gateway-app': value } });
    expect(res.status).toBe(302);
    expect(await appOf(requestId)).toEqual([{ event: 'login_success', app: null }]);
    expect(app.events('gateway_app_unknown')).toContainEqual(expect.objectContaining({ request_id: requestId }));
  });
});
