/**
 * Single sign-on across hosts that share no parent domain (issue 12), on the real nginx, auth
 * service and PostgreSQL: one nginx server answers every host name (server_name _), so
 * auth.alpha.test (PUBLIC_BASE_URL, the sign-in host), app.beta.test and app.gamma.test (APP_ORIGINS)
 * are just Host headers on the stack's port.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawRequest, setCookies, hiddenFields, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';

describe('single sign-on hand-off between hosts', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'a long enough demo password';
  let A = '';
  let B = '';
  let C = '';

  beforeAll(async () => {
    stack = await startStack({
      env: { LOGIN_RATE_LIMIT_IP: '1000/60', LOGIN_RATE_LIMIT_USER: '1000/60', LOGIN_RATE_LIMIT_USER_IP: '1000/60' },
      envFor: ({ proxyPort }) => ({
        PUBLIC_BASE_URL: `http://auth.alpha.test:${proxyPort}`,
        APP_ORIGINS: `http://app.beta.test:${proxyPort},http://app.gamma.test:${proxyPort}`,
      }),
    });
    A = `http://auth.alpha.test:${stack.proxyPort}`;
    B = `http://app.beta.test:${stack.proxyPort}`;
    C = `http://app.gamma.test:${stack.proxyPort}`;
    await stack.createUser('kirk', password, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** GET/POST on `origin` (its Host header) through nginx; `from` is the client's source address. */
  function on(origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: string, from?: string): Promise<HttpResult> {
    return rawRequest(stack.proxyPort, method, path, { host: new URL(origin).host, accept: 'text/html', ...headers }, body, from);
  }
  const sessionPair = (res: HttpResult): string | undefined =>
    setCookies(res)
      .map((c) => c.split(';')[0]!)
      .find((c) => c.startsWith('gw_session=') && c.length > 'gw_session='.length);
  const pathOf = (url: string): string => {
    const u = new URL(url);
    return u.pathname + u.search;
  };
  const claimsOf = (pair: string): Record<string, unknown> => JSON.parse(Buffer.from(pair.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8'));

  /** Signs in on A with the form, for `rd`; returns A's cookie and the sign-in's Location. */
  async function signInOnA(rd: string, from?: string): Promise<{ cookie: string; location: string }> {
    const form = await on(A, 'GET', `/login?rd=${encodeURIComponent(rd)}`, {}, undefined, from);
    expect(form.status).toBe(200);
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='))!;
    const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password }).toString();
    const res = await on(A, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: A }, body, from);
    expect(res.status).toBe(302);
    return { cookie: sessionPair(res)!, location: String(res.headers.location) };
  }

  async function events(kind: string): Promise<Array<{ reason: string | null; sid: string | null }>> {
    const rows = await stack.pool.query<{ reason: string | null; sid: string | null }>('SELECT reason, sid FROM auth_events WHERE event = $1 ORDER BY id', [kind]);
    return rows.rows;
  }

  test('B sends the browser to sign in on A, which hands the SAME session back to B with a one-time code', async () => {
    // B's gate → B's /login → A's /login with rd made absolute on B.
    const gate = await on(B, 'GET', '/federation?x=1');
    expect(gate.status).toBe(302);
    expect(gate.headers.location).toBe('/login?rd=%2Ffederation%3Fx%3D1');
    const toA = await on(B, 'GET', String(gate.headers.location));
    expect(toA.status).toBe(302);
    expect(toA.headers.location).toBe(`${A}/login?rd=${encodeURIComponent(`${B}/federation?x=1`)}`);

    const { cookie: onA, location } = await signInOnA(`${B}/federation?x=1`);
    expect(onA).toBeDefined();
    const handoff = new URL(location);
    expect(handoff.origin + handoff.pathname).toBe(`${B}/login/handoff`);
    expect(handoff.searchParams.get('rd')).toBe('/federation?x=1');
    expect(handoff.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const redeemed = await on(B, 'GET', pathOf(location));
    expect(redeemed.status).toBe(302);
    expect(redeemed.headers.location).toBe('/federation?x=1');
    const cookieLine = setCookies(redeemed).find((c) => c.startsWith('gw_session='))!;
    expect(cookieLine).toMatch(/^gw_session=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Max-Age=\d+$/);
    const onB = sessionPair(redeemed)!;
    expect(claimsOf(onB).sid).toBe(claimsOf(onA).sid);

    const page = await on(B, 'GET', '/federation?x=1', { cookie: onB });
    expect(page.status).toBe(200);
    const seen = stack.upstream.seen[stack.upstream.seen.length - 1]!;
    expect(seen.headers['x-payload-username']).toBe('kirk');
    // The session cookie never reaches the app.
    expect(String(seen.headers.cookie ?? '')).not.toContain('gw_session');

    // Only the code's hash is stored.
    const stored = await stack.pool.query<{ code_hash: string }>('SELECT code_hash FROM sso_handoffs');
    expect(stored.rows.map((r) => r.code_hash)).not.toContain(handoff.searchParams.get('code'));
    expect(await events('handoff_issued')).toEqual([expect.objectContaining({ reason: B, sid: claimsOf(onA).sid })]);
    expect(await events('handoff_redeemed')).toEqual([expect.objectContaining({ reason: B })]);

    // Replayed: refused, no cookie.
    const replay = await on(B, 'GET', pathOf(location));
    expect(replay.status).toBe(403);
    expect(sessionPair(replay)).toBeUndefined();
    expect((await events('handoff_refused')).map((e) => e.reason)).toContain('handoff-replayed');
  }, 30_000);

  test('a browser already signed in on A gets a code at once, without the form', async () => {
    const { cookie } = await signInOnA('/');
    const res = await on(A, 'GET', `/login?rd=${encodeURIComponent(`${C}/reports`)}`, { cookie });
    expect(res.status).toBe(302);
    expect(String(res.headers.location)).toMatch(new RegExp(`^${C}/login/handoff\\?code=[A-Za-z0-9_-]{43}&rd=%2Freports$`));
  }, 20_000);

  for (const [name, reason] of [
    ['expired (past SSO_HANDOFF_TTL_SECONDS)', 'handoff-expired'],
    ['presented on another listed origin', 'handoff-origin-mismatch'],
    ['presented on a host that is not listed', 'handoff-origin-unlisted'],
    ['presented from another client address', 'handoff-ip-mismatch'],
  ] as const)
  test(`a code ${name} is refused, and the app never sees the request`, async () => {
    const { location } = await signInOnA(`${B}/federation`);
    let res: HttpResult;
    const before = stack.upstream.seen.length;
    if (reason === 'handoff-expired') {
      // As if SSO_HANDOFF_TTL_SECONDS had passed: the row's expiry moved into the past.
      await stack.pool.query(`UPDATE sso_handoffs SET created_at = now() - interval '1 minute', expires_at = now() - interval '1 second' WHERE used_at IS NULL`);
      res = await on(B, 'GET', pathOf(location));
    } else if (reason === 'handoff-origin-mismatch') {
      res = await on(C, 'GET', pathOf(location));
    } else if (reason === 'handoff-origin-unlisted') {
      res = await on(`http://evil.test:${stack.proxyPort}`, 'GET', pathOf(location));
    } else {
      res = await on(B, 'GET', pathOf(location), {}, undefined, '127.0.0.2');
    }
    expect(res.status).toBe(403);
    expect(sessionPair(res)).toBeUndefined();
    expect(res.body).toContain('Sign-in link not valid');
    expect(stack.upstream.seen.length).toBe(before);
    expect((await events('handoff_refused')).map((e) => e.reason)).toContain(reason);
  }, 20_000);

  test('rd naming an origin that is not in APP_ORIGINS is refused ("/"), on the form and after sign-in', async () => {
    for (const rd of [`http://evil.test:${stack.proxyPort}/x`, `http://app.beta.test:${stack.proxyPort + 1}/x`, `HTTP://APP.BETA.TEST:${stack.proxyPort}/x`, `${B}//evil.test/`, `${B}@evil.test/`]) {
      const form = await on(A, 'GET', `/login?rd=${encodeURIComponent(rd)}`);
      expect({ rd, field: hiddenFields(form.body).rd }).toEqual({ rd, field: '/' });
    }
    const form = await on(A, 'GET', '/login');
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='))!;
    const body = new URLSearchParams({ ...hiddenFields(form.body), rd: `http://evil.test:${stack.proxyPort}/x`, username: 'kirk', password }).toString();
    const res = await on(A, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: A }, body);
    expect(res.headers.location).toBe('/');
  }, 20_000);

  test("the sign-in page's CSP lets the form's redirect reach the app origins, and nothing else", async () => {
    const form = await on(A, 'GET', '/login');
    expect(form.headers['content-security-policy']).toContain(`form-action 'self' ${B} ${C}`);
  });

  test('logout on B revokes the session and clears the cookie on B, then on A, ending signed out on A', async () => {
    const { cookie: onA, location } = await signInOnA(`${B}/federation`);
    const onB = sessionPair(await on(B, 'GET', pathOf(location)))!;
    const sid = String(claimsOf(onB).sid);

    const out = await on(B, 'POST', '/logout', { cookie: onB, origin: B, 'content-length': '0' }, '');
    expect(out.status).toBe(303);
    expect(setCookies(out)).toContain('gw_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0');
    const hop = new URL(String(out.headers.location));
    expect(hop.origin + hop.pathname).toBe(`${A}/logout/handoff`);
    const last = await on(A, 'GET', pathOf(hop.href), { cookie: onA });
    expect(last.status).toBe(303);
    expect(setCookies(last)).toContain('gw_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0');
    expect(last.headers.location).toBe(`${A}/login?signed_out=1`);
    // The link is good on A only.
    expect((await on(C, 'GET', pathOf(hop.href))).status).toBe(400);

    const row = await stack.pool.query<{ revoke_reason: string }>('SELECT revoke_reason FROM sessions WHERE sid = $1', [sid]);
    expect(row.rows[0]?.revoke_reason).toBe('logout');
  }, 20_000);

  test('logout on A clears the cookie on every host the session was handed to', async () => {
    const { cookie: onA, location } = await signInOnA(`${B}/federation`);
    await on(B, 'GET', pathOf(location));
    const toC = await on(A, 'GET', `/login?rd=${encodeURIComponent(`${C}/`)}`, { cookie: onA });
    await on(C, 'GET', pathOf(String(toC.headers.location)));

    const out = await on(A, 'POST', '/logout', { cookie: onA, origin: A, 'content-length': '0' }, '');
    let next = String(out.headers.location);
    const visited: string[] = [];
    while (next.includes('/logout/handoff')) {
      const url = new URL(next);
      visited.push(url.origin);
      const hop = await on(url.origin, 'GET', pathOf(next));
      expect(hop.status).toBe(303);
      expect(setCookies(hop)).toContain('gw_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0');
      next = String(hop.headers.location);
    }
    expect(visited).toEqual([B, C]);
    expect(next).toBe(`${A}/login?signed_out=1`);
  }, 20_000);
});

describe('single sign-on hand-off with the signed identity assertion on', () => {
  let stack: Stack;
  let dir: string;
  const test = stackTest(() => stack);
  const password = 'a long enough demo password';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-sso-asr-'));
    writeFileSync(join(dir, 'active.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    stack = await startStack({
      env: { ASSERTION_KEY_FILE: join(dir, 'active.pem') },
      envFor: ({ proxyPort }) => ({ PUBLIC_BASE_URL: `http://auth.alpha.test:${proxyPort}`, APP_ORIGINS: `http://app.beta.test:${proxyPort}` }),
    });
    await stack.createUser('kirk', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the host the session was handed to gets its own assertion for the same session on its first request', async () => {
    const A = `http://auth.alpha.test:${stack.proxyPort}`;
    const B = `http://app.beta.test:${stack.proxyPort}`;
    const on = (origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
      rawRequest(stack.proxyPort, method, path, { host: new URL(origin).host, accept: 'text/html', ...headers }, body);
    const form = await on(A, 'GET', `/login?rd=${encodeURIComponent(`${B}/hello`)}`);
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='))!;
    const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password }).toString();
    const signedIn = await on(A, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: A }, body);
    const handoff = new URL(String(signedIn.headers.location));
    const redeemed = await on(B, 'GET', handoff.pathname + handoff.search);
    const session = setCookies(redeemed).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_session=') && c.length > 11)!;
    const first = await on(B, 'GET', '/hello', { cookie: session });
    expect(first.status).toBe(200);
    const seen = stack.upstream.seen[stack.upstream.seen.length - 1]!;
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(String(seen.headers['x-gateway-assertion'])).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(setCookies(first).some((c) => c.startsWith('gw_session_asr='))).toBe(true);
  }, 30_000);
});
