import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { verifySessionToken } from '../../njs/src/core/token.js';
import { sessionJwtHeader } from '../../njs/src/core/session-contract.js';
import {
  decodeSegment,
  FIXED_NOW_MS,
  openTestDatabase,
  postForm,
  setCookies,
  startTestApp,
  TEST_SECRET,
  type HttpResult,
  type TestApp,
  type TestDatabase,
} from './app.testkit.js';
import type { PasswordAuthenticator } from './authenticators/types.js';
import { buildGateConfig } from './services/gate-config.js';
import { deriveKeyId } from './services/session-token.js';
import { groupsDigest } from './services/group-selection.js';

const FIXED_NOW_S = FIXED_NOW_MS / 1000;
const GENERIC = 'Invalid username or password.';
const NO_LIMITS = { LOGIN_RATE_LIMIT_IP: '100000/60', LOGIN_RATE_LIMIT_USER: '100000/60', LOGIN_RATE_LIMIT_USER_IP: '100000/60' };

let db: TestDatabase;
let app: TestApp;
let alice: { id: string };

beforeAll(async () => {
  db = await openTestDatabase();
  alice = await db.createUser('alice', 'correct horse battery', { email: 'alice@example.test', fullName: 'Alice Liddell', groups: ['staff', 'admins'] });
  await db.createUser('bob', 'bobs password');
  await db.createUser('mallory', 'mallorys password');
  await db.repo.setDisabled('mallory', true);
  // Limits are tested in app-rate-limit.test.ts; here they must not get in the way.
  app = await startTestApp({ usersRepo: db.repo, env: NO_LIMITS });
});

afterAll(async () => {
  await app?.close();
  await db?.close();
});

function expectSecurityHeaders(res: HttpResult): void {
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['content-security-policy']).toBe("frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'");
  expect(res.headers['referrer-policy']).toBe('same-origin');
  expect(res.headers['x-content-type-options']).toBe('nosniff');
}

function sessionCookie(res: HttpResult): string | undefined {
  return setCookies(res).find((c) => c.startsWith('gw_session='));
}

function tokenOf(res: HttpResult): string {
  const cookie = sessionCookie(res);
  if (!cookie) throw new Error(`no session cookie (status ${res.status}): ${res.body.slice(0, 300)}`);
  return cookie.slice('gw_session='.length).split(';')[0]!;
}

/** The gate's own verifier (njs core, run in Node) with Node crypto, as the njs adapter does it. */
function verifyAsGate(token: string, remoteAddr: string) {
  const gate = buildGateConfig(app.config);
  return verifySessionToken(token, {
    config: gate,
    now: FIXED_NOW_S,
    remoteAddr,
    hmac: (secret, data) => crypto.createHmac('sha256', secret).update(data).digest('base64url'),
    digest: (s) => crypto.createHash('sha256').update(s).digest('hex'),
    decode: (b64) => Buffer.from(b64, 'base64url').toString('utf8'),
  });
}

describe('GET /login', () => {
  test('renders an accessible, branded form without external assets', async () => {
    const { page, fields } = await app.loginForm('/reports?year=2024');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<html lang="en">');
    expect(page.body).toContain('<title>Sign in · Acme Gateway</title>');
    expect(page.body).toContain('<label for="username">Username</label>');
    expect(page.body).toContain('<label for="password">Password</label>');
    expect(page.body).toMatch(/<input type="text" id="username" name="username"[^>]* autocomplete="username"/);
    expect(page.body).toMatch(/<input type="password" id="password" name="password" autocomplete="current-password"/);
    expect(page.body).toContain('<form method="post" action="/login">');
    expect(page.body).not.toMatch(/<script|<link|src=|https?:\/\//);
    expect(page.body).not.toContain('role="alert"');
    expect(fields.rd).toBe('/reports?year=2024');
    expect(fields.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expectSecurityHeaders(page);
  });

  test('sets a random HttpOnly, SameSite=Strict, Secure CSRF cookie and embeds its HMAC, not the cookie', async () => {
    const first = await app.loginForm();
    const second = await app.loginForm();
    const [cookie] = setCookies(first.page);
    expect(cookie).toMatch(/^gw_csrf=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Secure$/);
    expect(first.csrfCookie).not.toBe(second.csrfCookie);
    expect(first.fields.csrf).not.toBe(first.csrfCookie.slice('gw_csrf='.length));
  });

  test('keeps a valid CSRF cookie the browser already has (several tabs stay valid)', async () => {
    const { csrfCookie, fields } = await app.loginForm();
    const again = await app.request('GET', '/login', { cookie: csrfCookie });
    expect(setCookies(again)).toEqual([]);
    expect(again.body).toContain(`name="csrf" value="${fields.csrf}"`);
  });

  test.each([
    ['protocol-relative URL', '//evil.example/'],
    ['absolute URL', 'https://evil.example/'],
    ['backslash trick', '/\\evil.example'],
    ['javascript: URL', 'javascript:alert(1)'],
    ['encoded slash', '/%2F%2Fevil.example'],
    ['dot segments', '/app/../../etc'],
    ['header injection', '/ok\r\nSet-Cookie: x=1'],
  ])('replaces a hostile rd (%s) with /', async (_name, rd) => {
    const { fields } = await app.loginForm(rd);
    expect(fields.rd).toBe('/');
  });

  test('escapes the return path in the page', async () => {
    const { page } = await app.loginForm('/search?q=a&b=c');
    expect(page.body).toContain('name="rd" value="/search?q=a&amp;b=c"');
  });
});

describe('POST /login success', () => {
  test('sets the session cookie with exact attributes and redirects to the return path', async () => {
    const res = await app.login('alice', 'correct horse battery', { rd: '/reports?year=2024' });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/reports?year=2024');
    const cookie = sessionCookie(res)!;
    expect(cookie).toMatch(/^gw_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Lax; Path=\/; Max-Age=43200; Secure$/);
    expectSecurityHeaders(res);
  });

  test('signs a token whose header segment is exactly the contract header and whose claims describe the user', async () => {
    const res = await app.login('alice', 'correct horse battery', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    const token = tokenOf(res);
    const [header, payload] = token.split('.') as [string, string];
    expect(header).toBe(Buffer.from(JSON.stringify(sessionJwtHeader(deriveKeyId(TEST_SECRET)))).toString('base64url'));
    const claims = decodeSegment(payload);
    expect(claims).toEqual({
      sub: alice.id,
      username: 'alice',
      name: 'Alice Liddell',
      email: 'alice@example.test',
      email_verified: true,
      // No policy names a group and PAYLOAD_GROUPS is unset: the token says how many groups the user has, not which (issue 9).
      groups: [],
      groups_count: 2,
      groups_digest: groupsDigest(['staff', 'admins']),
      src: 'local',
      ip: '203.0.113.9',
      sid: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      iat: FIXED_NOW_S,
      // SESSION_TOKEN_TTL_SECONDS (default 300); the cookie outlives it (the next test).
      exp: FIXED_NOW_S + 300,
    });
  });

  test('issues a token the njs gate accepts for the client address nginx saw, and refuses from another', async () => {
    const token = tokenOf(await app.login('alice', 'correct horse battery', { headers: { 'x-forwarded-for': '198.51.100.4' } }));
    expect(verifyAsGate(token, '198.51.100.4')).toMatchObject({ ok: true, claims: { username: 'alice' } });
    expect(verifyAsGate(token, '198.51.100.5')).toEqual({ ok: false, reason: 'ip-mismatch' });
  });

  test('omits name and email when the user has none', async () => {
    const claims = decodeSegment(tokenOf(await app.login('bob', 'bobs password')).split('.')[1]!);
    expect(claims).not.toHaveProperty('name');
    expect(claims).not.toHaveProperty('email');
    expect(claims.groups).toEqual([]);
  });

  test('matches the username case-insensitively and signs the stored spelling', async () => {
    const claims = decodeSegment(tokenOf(await app.login('ALICE', 'correct horse battery')).split('.')[1]!);
    expect(claims.username).toBe('alice');
  });

  test('gives every session its own sid', async () => {
    const a = decodeSegment(tokenOf(await app.login('bob', 'bobs password')).split('.')[1]!);
    const b = decodeSegment(tokenOf(await app.login('bob', 'bobs password')).split('.')[1]!);
    expect(a.sid).not.toBe(b.sid);
  });

  test.each([
    ['protocol-relative URL', '//evil.example/'],
    ['absolute URL', 'https://evil.example/x'],
    ['backslash trick', '/\\evil.example'],
    ['tab smuggling', '/\t/evil.example'],
  ])('redirects to / when the posted rd is hostile (%s)', async (_name, rd) => {
    const form = await app.loginForm();
    const res = await postForm(app, { ...form.fields, rd, username: 'bob', password: 'bobs password' }, { cookie: form.csrfCookie });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/');
  });

  test('logs auth_success with user, source, sid and the nginx request id, and never the password or token', async () => {
    const res = await app.login('alice', 'correct horse battery', { headers: { 'x-request-id': 'f00dfeedf00dfeedf00dfeedf00dfeed' } });
    const sid = decodeSegment(tokenOf(res).split('.')[1]!).sid;
    expect(res.headers['x-request-id']).toBe('f00dfeedf00dfeedf00dfeedf00dfeed');
    expect(app.events('auth_success')).toContainEqual(
      expect.objectContaining({ user: 'alice', src: 'local', sid, request_id: 'f00dfeedf00dfeedf00dfeedf00dfeed' }),
    );
    expect(app.rawLogs()).not.toContain('correct horse battery');
    expect(app.rawLogs()).not.toContain(tokenOf(res));
    expect(app.rawLogs()).not.toContain(TEST_SECRET);
  });

  test('binds the session to the IPv4 address, not the IPv4-mapped IPv6 form a dual-stack socket reports', async () => {
    const dual = await startTestApp({ usersRepo: db.repo, listenHost: '::', env: NO_LIMITS });
    try {
      // No X-Forwarded-For: req.ip is the socket address, ::ffff:127.0.0.1 on a dual-stack listener.
      const res = await dual.login('bob', 'bobs password');
      expect(decodeSegment(tokenOf(res).split('.')[1]!).ip).toBe('127.0.0.1');
    } finally {
      await dual.close();
    }
  });

  test('omits Secure when AUTH_COOKIE_SECURE=false (plain-HTTP development)', async () => {
    const insecure = await startTestApp({ usersRepo: db.repo, env: { ...NO_LIMITS, AUTH_COOKIE_SECURE: 'false', SESSION_MAX_SECONDS: '600' } });
    try {
      const form = await insecure.loginForm();
      expect(setCookies(form.page)[0]).toMatch(/; SameSite=Strict; Path=\/$/);
      const res = await insecure.login('bob', 'bobs password');
      expect(sessionCookie(res)).toMatch(/; HttpOnly; SameSite=Lax; Path=\/; Max-Age=600$/);
    } finally {
      await insecure.close();
    }
  });
});

describe('POST /login failure', () => {
  /** The page with the echoed username neutralised, so different usernames compare equal. */
  const normalise = (body: string, username: string) => body.replace(`value="${username}"`, 'value="USER"');

  test('answers a wrong password and an unknown user with the same status, page and generic message', async () => {
    const form = await app.loginForm('/x');
    const wrong = await postForm(app, { ...form.fields, username: 'alice', password: 'wrong' }, { cookie: form.csrfCookie });
    const unknown = await postForm(app, { ...form.fields, username: 'nobody', password: 'wrong' }, { cookie: form.csrfCookie });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(normalise(wrong.body, 'alice')).toBe(normalise(unknown.body, 'nobody'));
    expect(wrong.body).toContain(`<p class="alert" role="alert" id="login-error">${GENERIC}</p>`);
    expect(setCookies(wrong)).toEqual([]);
    expect(setCookies(unknown)).toEqual([]);
    expect(wrong.body).toContain('name="rd" value="/x"');
    expect(wrong.body).not.toContain('wrong"');
  });

  test('refuses a disabled user with the right password exactly like a wrong password', async () => {
    const form = await app.loginForm();
    const disabled = await postForm(app, { ...form.fields, username: 'mallory', password: 'mallorys password' }, { cookie: form.csrfCookie });
    const wrong = await postForm(app, { ...form.fields, username: 'alice', password: 'nope' }, { cookie: form.csrfCookie });
    expect(disabled.status).toBe(401);
    expect(normalise(disabled.body, 'mallory')).toBe(normalise(wrong.body, 'alice'));
    expect(sessionCookie(disabled)).toBeUndefined();
  });

  test.each([
    ['wrong password', 'alice', 'nope', 'invalid'],
    ['unknown user', 'nobody', 'nope', 'not-found'],
    ['disabled user, right password', 'mallory', 'mallorys password', 'disabled'],
    ['disabled user, wrong password', 'mallory', 'nope', 'invalid'],
  ])('logs auth_failure with the reason (%s)', async (_name, username, password, reason) => {
    const requestId = crypto.randomBytes(16).toString('hex');
    await app.login(username, password, { headers: { 'x-request-id': requestId } });
    expect(app.events('auth_failure')).toContainEqual(expect.objectContaining({ user: username, src: 'local', reason, request_id: requestId }));
  });

  test.each([
    ['empty username', { username: '', password: 'x' }],
    ['empty password', { username: 'alice', password: '' }],
    ['65-character username', { username: 'a'.repeat(65), password: 'x' }],
    ['1025-character password', { username: 'alice', password: 'p'.repeat(1025) }],
  ])('answers 400 with the form for invalid input (%s)', async (_name, creds) => {
    const form = await app.loginForm();
    const res = await postForm(app, { ...form.fields, ...creds }, { cookie: form.csrfCookie });
    expect(res.status).toBe(400);
    expect(res.body).toContain('role="alert"');
    expect(res.body).toContain('<form method="post" action="/login">');
  });

  test('answers 400 when a field is sent twice (an array, not a string)', async () => {
    const form = await app.loginForm();
    const body = `${new URLSearchParams({ ...form.fields, username: 'alice', password: 'x' })}&username=bob`;
    const res = await app.request(
      'POST',
      '/login',
      { host: `127.0.0.1:${app.port}`, 'content-type': 'application/x-www-form-urlencoded', cookie: form.csrfCookie },
      body,
    );
    expect(res.status).toBe(400);
  });
});

describe('POST /login CSRF protection', () => {
  type Tamper = (form: { csrfCookie: string }) => { headers: Record<string, string>; fields?: Record<string, string> };

  const cases: Array<[string, Tamper]> = [
    ['the CSRF cookie is missing', () => ({ headers: {} })],
    ['the form token is missing', (f) => ({ headers: { cookie: f.csrfCookie }, fields: { csrf: '' } })],
    ['the form token is wrong', (f) => ({ headers: { cookie: f.csrfCookie }, fields: { csrf: 'A'.repeat(43) } })],
    ['the cookie was swapped for an attacker-chosen value', () => ({ headers: { cookie: `gw_csrf=${'B'.repeat(43)}` } })],
    ['the CSRF cookie is duplicated (cookie tossing)', (f) => ({ headers: { cookie: `${f.csrfCookie}; ${f.csrfCookie}` } })],
    ['Origin is another site', (f) => ({ headers: { cookie: f.csrfCookie, origin: 'https://evil.example' } })],
    ['Origin is null (sandboxed frame)', (f) => ({ headers: { cookie: f.csrfCookie, origin: 'null' } })],
    ['Origin has another scheme than X-Forwarded-Proto', (f) => ({ headers: { cookie: f.csrfCookie, 'x-forwarded-proto': 'https' } })],
    ['Sec-Fetch-Site is cross-site', (f) => ({ headers: { cookie: f.csrfCookie, 'sec-fetch-site': 'cross-site' } })],
  ];

  test.each(cases)('answers 403 with a start-again link when %s', async (_name, tamper) => {
    const before = app.events('auth_failure').length + app.events('auth_success').length;
    const form = await app.loginForm('/after');
    const { headers, fields } = tamper(form);
    const res = await postForm(app, { ...form.fields, username: 'alice', password: 'correct horse battery', ...fields }, headers);
    expect(res.status).toBe(403);
    expect(res.body).toContain('role="alert"');
    expect(res.body).toContain('<a href="/login?rd=%2Fafter">Start again</a>');
    expect(sessionCookie(res)).toBeUndefined();
    expectSecurityHeaders(res);
    // Refused before any password was looked at.
    expect(app.events('auth_failure').length + app.events('auth_success').length).toBe(before);
    expect(app.events('csrf_rejected').length).toBeGreaterThan(0);
  });

  test('accepts a same-origin POST behind TLS termination (Origin https://host, X-Forwarded-Proto https)', async () => {
    const form = await app.loginForm();
    const res = await postForm(
      app,
      { ...form.fields, username: 'alice', password: 'correct horse battery' },
      { cookie: form.csrfCookie, host: 'gw.example.test', origin: 'https://gw.example.test', 'x-forwarded-proto': 'https', 'sec-fetch-site': 'same-origin' },
    );
    expect(res.status).toBe(302);
  });

  test('accepts a POST without Origin or Fetch Metadata (older browsers) when the token matches', async () => {
    const form = await app.loginForm();
    const res = await postForm(app, { ...form.fields, username: 'bob', password: 'bobs password' }, { cookie: form.csrfCookie, origin: undefined });
    expect(res.status).toBe(302);
  });

  test('ignores a forged X-Forwarded-Host when comparing the Origin', async () => {
    const form = await app.loginForm();
    const res = await postForm(
      app,
      { ...form.fields, username: 'alice', password: 'correct horse battery' },
      { cookie: form.csrfCookie, origin: 'http://evil.example', 'x-forwarded-host': 'evil.example' },
    );
    expect(res.status).toBe(403);
  });
});

describe('malformed requests', () => {
  test.each([
    ['a gzip body that is not gzip', { 'content-encoding': 'gzip' }, 'username=a', 400],
    ['an unsupported charset', { 'content-type': 'application/x-www-form-urlencoded; charset=utf-7' }, 'username=a', 415],
    ['a body over 8 KiB', {}, `username=${'a'.repeat(9000)}`, 413],
    ['too many fields', {}, Array.from({ length: 30 }, (_, i) => `f${i}=1`).join('&'), 413],
    ['a JSON body', { 'content-type': 'application/json' }, '{"username":"alice"}', 400],
    ['no body at all', { 'content-type': undefined }, undefined, 400],
  ])('answers %s with a 4xx page, never a 500', async (_name, headers, body, status) => {
    const res = await app.request(
      'POST',
      '/login',
      { host: `127.0.0.1:${app.port}`, 'content-type': 'application/x-www-form-urlencoded', ...(headers as Record<string, string>) },
      body,
    );
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toContain('The request could not be read.');
    expect(res.body).toContain('<a href="/login">Start again</a>');
    expectSecurityHeaders(res);
  });
});

describe('POST /logout', () => {
  const CLEARED = 'gw_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure';

  test('clears the session cookie with the same attributes and sends the browser to /login', async () => {
    const token = tokenOf(await app.login('alice', 'correct horse battery'));
    const res = await app.request('POST', '/logout', {
      host: `127.0.0.1:${app.port}`,
      origin: `http://127.0.0.1:${app.port}`,
      'sec-fetch-site': 'same-origin',
      cookie: `gw_session=${token}`,
      'x-request-id': 'logout-req-1',
    });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?signed_out=1');
    expect(setCookies(res)).toEqual([CLEARED]);
    expectSecurityHeaders(res);
    const sid = decodeSegment(token.split('.')[1]!).sid;
    expect(app.events('logout')).toContainEqual(expect.objectContaining({ user: 'alice', sid, request_id: 'logout-req-1' }));
  });

  test.each([
    ['no Origin and no Fetch Metadata', {}],
    ['Sec-Fetch-Site none (typed URL)', { 'sec-fetch-site': 'none' }],
    ['a same-origin Origin', { origin: 'http://gw.example.test', host: 'gw.example.test' }],
  ])('accepts %s', async (_name, headers) => {
    const res = await app.request('POST', '/logout', { host: `127.0.0.1:${app.port}`, ...headers });
    expect(res.status).toBe(303);
    expect(setCookies(res)).toEqual([CLEARED]);
  });

  test.each([
    ['a cross-site Origin', { origin: 'https://evil.example' }],
    ['Origin null', { origin: 'null' }],
    ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site same-site (a sibling subdomain)', { 'sec-fetch-site': 'same-site' }],
  ])('refuses %s with 403 and leaves the cookie alone', async (_name, headers) => {
    const res = await app.request('POST', '/logout', { host: `127.0.0.1:${app.port}`, ...headers });
    expect(res.status).toBe(403);
    expect(setCookies(res)).toEqual([]);
    expect(res.body).toContain('role="alert"');
  });

  test('GET /logout offers a sign-out button instead of signing out', async () => {
    const res = await app.request('GET', '/logout');
    expect(res.status).toBe(200);
    expect(setCookies(res)).toEqual([]);
    expect(res.body).toContain('<form method="post" action="/logout">');
  });
});

describe('other routes and errors', () => {
  test('GET /healthz answers liveness only; GET /readyz checks the database too', async () => {
    const res = await app.request('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expectSecurityHeaders(res);
    const ready = await app.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', checks: { config: 'ok', database: 'ok' } });
  });

  test('unknown routes get a small 404 page with the security headers', async () => {
    const res = await app.request('GET', '/admin');
    expect(res.status).toBe(404);
    expect(res.body).toContain('Page not found');
    expectSecurityHeaders(res);
  });

  test('replaces a missing or unsafe X-Request-Id with a generated one', async () => {
    const missing = await app.request('GET', '/healthz');
    const unsafe = await app.request('GET', '/healthz', { 'x-request-id': 'bad id\u00e9' });
    expect(missing.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('an unexpected error gives 500 with only the request id: no message, no stack', async () => {
    const broken: PasswordAuthenticator = {
      id: 'broken',
      authenticate: async () => {
        throw new TypeError('secret internal detail at /srv/app.js:42');
      },
    };
    const crashing = await startTestApp({ usersRepo: db.repo, deps: { authenticators: [broken] } });
    try {
      const res = await crashing.login('alice', 'x', { headers: { 'x-request-id': 'boom-1' } });
      expect(res.status).toBe(500);
      expect(res.body).toContain('<code>boom-1</code>');
      expect(res.body).not.toMatch(/secret internal detail|TypeError|app\.js|at /);
      expectSecurityHeaders(res);
      expect(crashing.events('auth_error')).toContainEqual(expect.objectContaining({ src: 'broken', reason: 'authenticator-error', request_id: 'boom-1' }));
    } finally {
      await crashing.close();
    }
  });
});
