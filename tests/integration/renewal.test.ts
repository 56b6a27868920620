/**
 * /auth/renew through the real stack: a session signed in through nginx is renewed by calling the
 * auth service directly (nginx calls it from @gate_renew, see silent-renewal.test.ts), and the
 * renewed cookie passes the gate.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import type { SessionClaims } from '../../njs/src/core/session-contract.js';
import { signSessionClaims } from '../../auth-service/src/services/session-token.js';
import { rawRequest, setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';

const PASSWORD = 'renewal test password 42';

function claimsOf(cookiePair: string): SessionClaims {
  return JSON.parse(Buffer.from(cookiePair.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8')) as SessionClaims;
}

describe('session renewal through the real stack', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ cuttableStore: true, env: { SESSION_IDLE_SECONDS: '600' } });
    await stack.createUser('kirk', PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  /** Straight to the auth service, from 127.0.0.1 as nginx's $remote_addr was at sign-in. */
  const renew = (method: 'POST' | 'GET', cookie: string) => rawRequest(stack.authPort, method, '/auth/renew', { cookie, accept: 'application/json' });
  const gate = (cookie: string) => stack.request('GET', '/private', { accept: 'application/json', cookie });
  const newSession = (res: HttpResult) => setCookies(res).map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${stack.cookieName}=`));
  const events = async (sid: string) =>
    (await stack.pool.query<{ event: string; reason: string | null }>('SELECT event, reason FROM auth_events WHERE sid = $1 ORDER BY id', [sid])).rows;

  test('an expired session token is renewed (same sid and iat) and the new one passes the gate', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    const signedIn = claimsOf(session!);
    // Forge what a short token TTL will produce: the same session's token, expired a minute ago.
    const now = Math.floor(Date.now() / 1000);
    const expired = `${stack.cookieName}=${signSessionClaims({ ...signedIn, exp: now - 60 }, stack.secret)}`;
    const res = await renew('POST', expired);
    expect(res.status).toBe(204);
    const cookie = setCookies(res).find((c) => c.startsWith(`${stack.cookieName}=`))!;
    expect(cookie).toMatch(/; HttpOnly; SameSite=Lax; Path=\/; Max-Age=\d+$/);
    const renewed = newSession(res)!;
    expect(claimsOf(renewed)).toMatchObject({ sid: signedIn.sid, iat: signedIn.iat, username: 'kirk', ip: '127.0.0.1' });
    expect(claimsOf(renewed).exp).toBeGreaterThan(now);

    const passed = await gate(renewed);
    expect(passed.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    expect(stack.upstream.seen[0]!.headers['x-payload-username']).toBe('kirk');
    expect(await events(signedIn.sid)).toEqual([
      { event: 'login_success', reason: null },
      { event: 'renewal', reason: null },
    ]);
  });

  test('GET answers 200 with the new exp in JSON and the cookie', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    const res = await renew('GET', session!);
    expect(res.status).toBe(200);
    const renewed = newSession(res)!;
    expect(JSON.parse(res.body)).toEqual({ exp: claimsOf(renewed).exp });
  });

  test('after a revocation, renewal answers 401 session-ended, clears the cookie and records renewal_refused', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    const sid = claimsOf(session!).sid;
    const out = await stack.request('POST', '/logout', { cookie: session!, origin: stack.baseUrl, 'sec-fetch-site': 'same-origin' });
    expect(out.status).toBe(303);
    const res = await renew('POST', session!);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthenticated', reason: 'session-ended', login: '/login' });
    expect(setCookies(res)).toContainEqual(expect.stringMatching(new RegExp(`^${stack.cookieName}=; .*Max-Age=0`)));
    expect((await events(sid)).at(-1)).toEqual({ event: 'renewal_refused', reason: 'session-ended' });
  });

  test('a store that cannot be reached answers 503 JSON, never a token', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    await stack.dbRelay!.cut();
    try {
      const res = await renew('POST', session!);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ error: 'store-unavailable' });
      expect(newSession(res)).toBeUndefined();
    } finally {
      await stack.dbRelay!.restore();
    }
  });
});

describe('session renewal on the embedded store (PGlite)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ store: 'embedded' });
    await stack.createUser('chekov', PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  // All connections share one session there: a query on another connection inside the renewal's
  // transaction would wait for it forever.
  test('two renewals at once both answer 204, and a disabled user is refused', async () => {
    const { session } = await stack.login('chekov', PASSWORD, '/');
    const renew = () => rawRequest(stack.authPort, 'POST', '/auth/renew', { cookie: session! });
    expect((await Promise.all([renew(), renew()])).map((r) => r.status)).toEqual([204, 204]);
    await stack.repo.setDisabled('chekov', true);
    const refused = await renew();
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ reason: 'user-disabled' });
  });
});
