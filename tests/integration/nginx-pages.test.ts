/**
 * The pages and JSON answers nginx serves itself (errors/*.html, the gate's 401/403/400 JSON) carry
 * the same protective headers as the auth service's pages: no framing (the 403 page has a sign-out
 * button), no caching, no sniffing, a CSP that allows only their own inline CSS.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { SEED_POLICY_FILE } from '../support/policy.js';
import { stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';
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
      env: { POLICY_FILE: SEED_POLICY_FILE },
      // A protected location whose upstream is down: nginx answers 502 itself.
      editSite: (site) =>
        site.replace(
          '    include snippets/gate-server.conf;',
          `    include snippets/gate-server.conf;
    location /down/ {
        include snippets/protect.conf;
        proxy_pass http://127.0.0.1:9/;
    }`,
        ),
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
});
