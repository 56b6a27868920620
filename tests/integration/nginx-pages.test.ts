/**
 * The pages and JSON answers nginx serves itself (runtime/pages/*.html, written by the auth service;
 * the gate's 401/403/400 JSON; 429 and 5xx JSON) carry the same protective headers as the auth
 * service's pages: no framing (the 403 page has a sign-out button), no caching, no sniffing, a CSP
 * that allows only their own inline CSS and data: images. They carry BRAND_NAME, the request id the
 * access log records, and say which part failed: the protected app, or the sign-in service.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { SEED_POLICY_FILE } from '../support/policy.js';
import { accessLogEntry, stackTest, startStack, withDownLocation, type HttpResult, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'";

function expectPageHeaders(res: HttpResult): void {
  expect({
    csp: res.headers['content-security-policy'],
    frame: res.headers['x-frame-options'],
    nosniff: res.headers['x-content-type-options'],
    referrer: res.headers['referrer-policy'],
    cache: res.headers['cache-control'],
  }).toEqual({ csp: CSP, frame: 'DENY', nosniff: 'nosniff', referrer: 'same-origin', cache: 'no-store' });
}

describe("nginx's own pages and JSON answers", () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let mccoy: string;

  beforeAll(async () => {
    stack = await startStack({
      env: { POLICY_FILE: SEED_POLICY_FILE, BRAND_NAME: 'Starfleet Access' },
      // A protected location whose upstream is down: nginx answers 502 itself.
      editSite: withDownLocation,
    });
    // Not in Federation: the seed policy refuses /federation to him.
    mccoy = `gw_session=${signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { username: 'mccoy', groups: ['Medical'] }), stack.secret)}`;
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const cases: Array<[string, string, string, () => Record<string, string>, number, string]> = [
    ['the 403 page (with its sign-out form)', 'GET', '/federation', () => ({ accept: 'text/html', cookie: mccoy }), 403, 'action="/logout"'],
    ['the 403 JSON', 'GET', '/federation', () => ({ accept: 'application/json', cookie: mccoy }), 403, '"policy-denied"'],
    ['the 400 page', 'GET', '/federation%5c', () => ({ accept: 'text/html', cookie: mccoy }), 400, '<html'],
    ['the 400 JSON', 'GET', '/federation%5c', () => ({ accept: 'application/json', cookie: mccoy }), 400, '"path-ambiguous"'],
    ['the 401 JSON', 'GET', '/reports', () => ({ accept: 'application/json' }), 401, '"unauthenticated"'],
    ['the 50x page', 'GET', '/down/x', () => ({ accept: 'text/html', cookie: mccoy }), 502, '<html'],
    ['the 5xx JSON', 'GET', '/down/x', () => ({ accept: 'application/json', cookie: mccoy }), 502, '"app-unavailable"'],
  ];
  for (const [name, method, path, headers, status, body] of cases) {
    test(`${name} carries CSP, X-Frame-Options, nosniff, Referrer-Policy and no-store`, async () => {
      const res = await stack.request(method, path, headers());
      expect(res.status).toBe(status);
      expect(res.body).toContain(body);
      expectPageHeaders(res);
    });
  }

  test('the 429 page of the sign-in flood guard carries them too', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => stack.request('POST', '/login', { accept: 'text/html', 'content-length': '0' }, '')),
    );
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expectPageHeaders(limited[0]!);
  });

  /** The request id a page shows, and the access-log line with that id. */
  async function shownRequestId(res: HttpResult): Promise<{ id: string; log: Record<string, unknown> | undefined }> {
    const id = /Request id: <code>([0-9a-f]{32})<\/code>/.exec(res.body)?.[1] ?? '';
    return { id, log: await accessLogEntry(stack.nginx, (e) => e.request_id === id) };
  }

  const pages: Array<[string, string, () => Record<string, string>, number, string]> = [
    ['403', '/federation', () => ({ accept: 'text/html', cookie: mccoy }), 403, '<h1>Access denied</h1>'],
    ['400', '/federation%5c', () => ({ accept: 'text/html', cookie: mccoy }), 400, '<h1>Bad request</h1>'],
    ['50x of the app', '/down/x', () => ({ accept: 'text/html', cookie: mccoy }), 502, 'The application behind this gateway is not answering'],
  ];
  for (const [name, path, headers, status, text] of pages) {
    test(`the ${name} page carries BRAND_NAME and the request id of the access log, and no SSI directive is left`, async () => {
      const res = await stack.request('GET', path, headers());
      expect(res.status).toBe(status);
      expect(res.body).toContain(text);
      expect(res.body).toContain('<title>');
      expect(res.body).toContain(' · Starfleet Access</title>');
      expect(res.body).toContain('<span>Starfleet Access</span>');
      expect(res.body).not.toContain('<!--#');
      const { id, log } = await shownRequestId(res);
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(log).toMatchObject({ request_id: id, status });
    });
  }

  test('the 403 page says who is signed in, HTML-escaped (a username with <script> is shown as text)', async () => {
    const evil = '<script>alert(1)</script>&"';
    const cookie = `gw_session=${signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', nowSeconds(), { username: evil, groups: ['Medical'] }), stack.secret)}`;
    const res = await stack.request('GET', '/federation', { accept: 'text/html', cookie });
    expect(res.status).toBe(403);
    expect(res.body).toContain('You are signed in as <strong>&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;</strong>.');
    expect(res.body).not.toContain('<script>');
    const plain = await stack.request('GET', '/federation', { accept: 'text/html', cookie: mccoy });
    expect(plain.body).toContain('You are signed in as <strong>mccoy</strong>.');
  });

  test('the 5xx JSON carries the request id of the access log', async () => {
    const res = await stack.request('GET', '/down/x', { accept: 'application/json', cookie: mccoy });
    const body = JSON.parse(res.body) as { request_id: string };
    expect(body).toEqual({ error: 'unavailable', reason: 'app-unavailable', request_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(res.headers['content-type']).toBe('application/json');
    await expect(accessLogEntry(stack.nginx, (e) => e.request_id === body.request_id)).resolves.toMatchObject({ status: 502 });
  });

  test('sign-in service down: /login, /logout and /auth/about say that sign-in is unavailable (not the app), JSON for API clients', async () => {
    await stack.stopAuthService();
    try {
      for (const [method, path] of [['GET', '/login'], ['POST', '/logout'], ['GET', '/auth/about'], ['GET', '/login/oidc']] as const) {
        const page = await stack.request(method, path, { accept: 'text/html', 'content-length': '0' }, '');
        expect({ path, status: page.status }).toEqual({ path, status: 502 });
        expect(page.body).toContain('<h1>Sign-in unavailable</h1>');
        expect(page.body).toContain('The sign-in service of this gateway is not answering');
        expect(page.body).not.toContain('application');
        expect(page.body).toContain('<span>Starfleet Access</span>');
        expectPageHeaders(page);
        const api = await stack.request(method, path, { accept: 'application/json', 'content-length': '0' }, '');
        expect(api.status).toBe(502);
        expect(JSON.parse(api.body)).toEqual({ error: 'unavailable', reason: 'auth-unavailable', request_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
      }
    } finally {
      await stack.restartAuthService({});
    }
    expect((await stack.request('GET', '/login', { accept: 'text/html' })).status).toBe(200);
  });

  test('the flood guard answers API clients with JSON', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => stack.request('POST', '/login', { accept: 'application/json', 'content-length': '0' }, '')),
    );
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(JSON.parse(limited[0]!.body)).toEqual({ error: 'too-many-requests', request_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
  });
});
