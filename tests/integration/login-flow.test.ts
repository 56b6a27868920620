/**
 * The whole journey through the real nginx gate, against both stores: anonymous redirect, login,
 * access with identity headers, logout.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { accessLogEntry, setCookies, stackTest, startStack, type Stack, type StoreKind } from '../support/stack.js';

const stores: StoreKind[] = ['postgres', 'embedded'];

describe.each(stores)('login, access and logout through nginx (%s store)', (store) => {
  let stack: Stack;
  const password = 'correct horse battery staple';

  beforeAll(async () => {
    stack = await startStack({ store, env: { PAYLOAD_GROUPS: '*' } });
    await stack.createUser('kirk', password, { groups: ['Federation', 'Starfleet'], email: 'kirk@enterprise.example', fullName: 'James T. Kirk' });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const test = stackTest(() => stack);

  test('a browser without a session is redirected to the login form with the original URI', async () => {
    const res = await stack.request('GET', '/federation?tab=crew&x=%2F', { accept: 'text/html,application/xhtml+xml' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/login?rd=' + encodeURIComponent('/federation?tab=crew&x=%2F'));
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('an API client without a session gets 401 JSON, and the upstream sees nothing', async () => {
    const res = await stack.request('GET', '/api/things', { accept: 'application/json' });
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason: 'token-missing' });
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('the login form is served through nginx with a CSRF token and the validated rd', async () => {
    const form = await stack.loginForm('/federation');
    expect(form.page.status).toBe(200);
    expect(form.page.body).toMatch(/<label[^>]*for="username"/);
    expect(form.page.body).toMatch(/<label[^>]*for="password"/);
    expect(form.fields.rd).toBe('/federation');
    expect(Object.keys(form.fields).length).toBeGreaterThanOrEqual(2);
  });

  test('signing in lands on rd with a hardened cookie, and the upstream receives the identity', async () => {
    const { res, session } = await stack.login('Kirk', password, '/federation');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/federation');
    const cookie = setCookies(res).find((c) => c.startsWith('gw_session='));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Lax/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    expect(cookie).not.toMatch(/;\s*Secure/i); // AUTH_COOKIE_SECURE=false in this stack
    expect(session).not.toBeNull();

    stack.upstream.reset();
    const page = await stack.request('GET', '/federation', { accept: 'text/html', cookie: `theme=dark; ${session}; lang=en` });
    expect(page.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    const h = stack.upstream.seen[0].headers;
    expect(h['x-payload-username']).toBe('kirk');
    expect(h['x-payload-email']).toBe('kirk@enterprise.example');
    expect(h['x-payload-name']).toBe('James T. Kirk');
    expect(h['x-payload-groups']).toBe('Federation,Starfleet');
    expect(h['x-payload-src']).toBe('local');
    expect(h['x-payload-sub']).toMatch(/^[0-9a-f-]{36}$/);
    // The session cookie is not forwarded; other cookies are.
    expect(h.cookie).toBe('theme=dark; lang=en');
    expect(h['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    const last = await accessLogEntry(stack.nginx, (e) => e.path === '/federation' && e.status === 200);
    expect(last).toMatchObject({ user: 'kirk', reason: 'session-valid', status: 200 });
  });

  test('signing out clears the cookie and sends the user to the login page', async () => {
    const { session } = await stack.login('kirk', password, '/');
    const res = await stack.request('POST', '/logout', { cookie: String(session), origin: stack.baseUrl, 'content-length': '0' }, '');
    expect([302, 303]).toContain(res.status);
    expect(res.headers.location).toBe('/login?signed_out=1');
    const cleared = setCookies(res).find((c) => c.startsWith('gw_session='));
    expect(cleared).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i);
  });

  test('a wrong password gets the form again with a generic message, and no session', async () => {
    const { res, session } = await stack.login('kirk', 'not the password', '/federation');
    expect(res.status).toBe(401);
    expect(session).toBeNull();
    expect(res.body).toContain('Invalid username or password.');
  }, 20_000);
});
