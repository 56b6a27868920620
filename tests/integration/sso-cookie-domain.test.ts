/**
 * Single sign-on by cookie domain (SESSION_COOKIE_DOMAIN, issue 12) on the real nginx, auth service
 * and PostgreSQL: a sign-in on auth.corp.test sets a cookie for corp.test, which every host under it
 * sends, so app1.corp.test needs no second sign-in and no hand-off; a host outside the domain
 * (app.other.test, in APP_ORIGINS) still gets a one-time code. One nginx server answers every name.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { hiddenFields, rawRequest, setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';

describe('single sign-on by cookie domain', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'a long enough demo password';
  let AUTH = '';
  let APP1 = '';
  let OTHER = '';

  beforeAll(async () => {
    stack = await startStack({
      env: { SESSION_COOKIE_DOMAIN: 'corp.test' },
      envFor: ({ proxyPort }) => ({
        PUBLIC_BASE_URL: `http://auth.corp.test:${proxyPort}`,
        APP_ORIGINS: `http://app1.corp.test:${proxyPort},http://app.other.test:${proxyPort}`,
      }),
    });
    AUTH = `http://auth.corp.test:${stack.proxyPort}`;
    APP1 = `http://app1.corp.test:${stack.proxyPort}`;
    OTHER = `http://app.other.test:${stack.proxyPort}`;
    await stack.createUser('kirk', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  function on(origin: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpResult> {
    return rawRequest(stack.proxyPort, method, path, { host: new URL(origin).host, accept: 'text/html', ...headers }, body);
  }

  async function signIn(rd: string): Promise<HttpResult> {
    const form = await on(AUTH, 'GET', `/login?rd=${encodeURIComponent(rd)}`);
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='))!;
    const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password }).toString();
    return on(AUTH, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: AUTH }, body);
  }
  const sessionLine = (res: HttpResult) => setCookies(res).find((c) => c.startsWith('gw_session='));

  test('the session cookie carries Domain=corp.test, and a sibling host accepts it without signing in again', async () => {
    const res = await signIn('/');
    expect(res.status).toBe(302);
    const line = sessionLine(res)!;
    expect(line).toMatch(/^gw_session=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Domain=corp\.test; Max-Age=43200$/);
    // The CSRF cookie stays host-only: only the session is shared.
    const form = await on(AUTH, 'GET', '/login');
    expect(setCookies(form).find((c) => c.startsWith('gw_csrf='))).not.toContain('Domain=');

    const pair = line.split(';')[0]!;
    const page = await on(APP1, 'GET', '/reports', { cookie: `${pair}; theme=dark` });
    expect(page.status).toBe(200);
    const seen = stack.upstream.seen[stack.upstream.seen.length - 1]!;
    expect(seen.headers['x-payload-username']).toBe('kirk');
    // Every host under the domain receives the cookie; the gateway strips it before the app.
    expect(seen.headers.cookie).toBe('theme=dark');
  }, 20_000);

  test('rd on a host under the domain needs no hand-off code; a host outside it gets one', async () => {
    const inside = await signIn(`${APP1}/reports`);
    expect(inside.headers.location).toBe(`${APP1}/reports`);
    const outside = await signIn(`${OTHER}/reports`);
    expect(String(outside.headers.location)).toMatch(new RegExp(`^${OTHER}/login/handoff\\?code=`));
    const handoffs = await stack.pool.query<{ target_origin: string }>('SELECT target_origin FROM sso_handoffs');
    expect(handoffs.rows.map((r) => r.target_origin)).toEqual([OTHER]);
    // The host outside the domain gets a host-only cookie of the same name.
    const redeemed = await on(OTHER, 'GET', new URL(String(outside.headers.location)).pathname + new URL(String(outside.headers.location)).search);
    expect(redeemed.status).toBe(302);
    expect(sessionLine(redeemed)).toMatch(/^gw_session=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Max-Age=\d+$/);
  }, 20_000);

  test('logout clears the cookie with the same Domain, from any host under it', async () => {
    const pair = sessionLine(await signIn('/'))!.split(';')[0]!;
    const out = await on(APP1, 'POST', '/logout', { cookie: pair, origin: APP1, 'content-length': '0' }, '');
    expect(out.status).toBe(303);
    expect(setCookies(out)).toContain('gw_session=; HttpOnly; SameSite=Lax; Path=/; Domain=corp.test; Max-Age=0');
  }, 20_000);
});

describe('single sign-on by cookie domain over https (PUBLIC_BASE_URL https)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'a long enough demo password';

  beforeAll(async () => {
    // nginx stays plain http here; the auth service only needs to know the public origin is https.
    stack = await startStack({
      env: { SESSION_COOKIE_DOMAIN: 'corp.test', AUTH_COOKIE_SECURE: 'true' },
      envFor: ({ proxyPort }) => ({ PUBLIC_BASE_URL: `https://auth.corp.test:${proxyPort}` }),
    });
    await stack.createUser('kirk', password);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('the cookie is __Secure-gw_session with the Domain, and the gate (and the WAF exclusion) read that name', async () => {
    const origin = `https://auth.corp.test:${stack.proxyPort}`;
    const on = (host: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
      rawRequest(stack.proxyPort, method, path, { host: `${host}:${stack.proxyPort}`, accept: 'text/html', ...headers }, body);
    const form = await on('auth.corp.test', 'GET', '/login');
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('__Host-gw_csrf='))!;
    const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password }).toString();
    const res = await on('auth.corp.test', 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin }, body);
    expect(res.status).toBe(302);
    const line = setCookies(res).find((c) => c.startsWith('__Secure-gw_session='))!;
    expect(line).toMatch(/^__Secure-gw_session=[^;]+; HttpOnly; SameSite=Lax; Path=\/; Domain=corp\.test; Max-Age=43200; Secure$/);
    const page = await on('app1.corp.test', 'GET', '/reports', { cookie: line.split(';')[0]! });
    expect(page.status).toBe(200);
    expect(stack.upstream.seen[stack.upstream.seen.length - 1]!.headers['x-payload-username']).toBe('kirk');
    expect(stack.upstream.seen[stack.upstream.seen.length - 1]!.headers.cookie).toBeUndefined();
  }, 20_000);
});
