/**
 * Every way the gate refuses a request, through the real nginx: each case asserts the status, the
 * reason in the access log, and that the upstream saw nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { accessLogEntry, stackTest, startStack, strongSecret, type Stack } from '../support/stack.js';
import { b64url, claimsFor, nowSeconds, signWith } from '../support/tokens.js';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';

describe('the gate refuses bad sessions before the upstream sees anything', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let header: string;

  beforeAll(async () => {
    stack = await startStack();
    header = headerSegmentFor(stack.secret);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const cases: Array<{ name: string; reason: string; cookie: () => string }> = [
    { name: 'no cookie at all', reason: 'token-missing', cookie: () => 'theme=dark' },
    { name: 'an empty session cookie', reason: 'token-missing', cookie: () => 'gw_session=' },
    { name: 'a token signed with another key', reason: 'token-invalid', cookie: () => `gw_session=${signWith(header, claimsFor('127.0.0.1', nowSeconds()), strongSecret())}` },
    {
      name: 'a token with alg none and no signature',
      reason: 'token-invalid',
      cookie: () => `gw_session=${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claimsFor('127.0.0.1', nowSeconds()))}.`,
    },
    {
      name: 'an HS256 token whose header names no known key',
      reason: 'token-invalid',
      cookie: () => `gw_session=${signWith(b64url({ alg: 'HS256', typ: 'JWT' }), claimsFor('127.0.0.1', nowSeconds()), stack.secret)}`,
    },
    {
      name: 'a payload changed after signing (privilege escalation)',
      reason: 'token-invalid',
      cookie: () => {
        const t = signWith(header, claimsFor('127.0.0.1', nowSeconds()), stack.secret).split('.');
        return `gw_session=${t[0]}.${b64url(claimsFor('127.0.0.1', nowSeconds(), { groups: ['Admins'] }))}.${t[2]}`;
      },
    },
    // Expired but otherwise valid: nginx asks the auth service to renew it, which refuses (no such session).
    { name: 'an expired token of a session the store does not know', reason: 'session-ended', cookie: () => `gw_session=${signWith(header, claimsFor('127.0.0.1', nowSeconds() - 7200, { exp: nowSeconds() - 3600 }), stack.secret)}` },
    { name: 'a token not valid yet', reason: 'token-not-yet-valid', cookie: () => `gw_session=${signWith(header, claimsFor('127.0.0.1', nowSeconds(), { nbf: nowSeconds() + 3600 }), stack.secret)}` },
    { name: 'a token without exp', reason: 'token-malformed', cookie: () => `gw_session=${signWith(header, claimsFor('127.0.0.1', nowSeconds(), { exp: undefined }), stack.secret)}` },
    { name: 'a token stolen from another address', reason: 'ip-mismatch', cookie: () => `gw_session=${signWith(header, claimsFor('10.9.8.7', nowSeconds()), stack.secret)}` },
    {
      name: 'two session cookies (cookie tossing)',
      reason: 'token-duplicate',
      cookie: () => {
        const good = signWith(header, claimsFor('127.0.0.1', nowSeconds()), stack.secret);
        return `gw_session=${good}; gw_session=${good}`;
      },
    },
    { name: 'garbage in the cookie', reason: 'token-invalid', cookie: () => 'gw_session=not.a.jwt' },
  ];

  for (const c of cases) {
    test(`API request with ${c.name}: 401 ${c.reason}`, async () => {
      const res = await stack.request('GET', '/private', { accept: 'application/json', cookie: c.cookie() });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason: c.reason });
      expect(stack.upstream.seen).toHaveLength(0);
    });
    test(`browser request with ${c.name}: redirect to login`, async () => {
      const res = await stack.request('GET', '/private?q=1', { accept: 'text/html', cookie: c.cookie() });
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe('/login?rd=%2Fprivate%3Fq%3D1');
      expect(stack.upstream.seen).toHaveLength(0);
    });
  }

  test('forged tokens are logged as warnings, with the reason and never the token', async () => {
    const forged = signWith(header, claimsFor('127.0.0.1', nowSeconds()), strongSecret());
    await stack.request('GET', '/private', { accept: 'application/json', cookie: `gw_session=${forged}` });
    const log = stack.nginx.errorLog();
    expect(log).toMatch(/\[warn\].*token-invalid/);
    expect(log).not.toContain(forged.split('.')[2]);
  });

  test('two Cookie headers each carrying a session are a duplicate', async () => {
    const good = signWith(header, claimsFor('127.0.0.1', nowSeconds()), stack.secret);
    const res = await stack.request('GET', '/private', [
      ['accept', 'application/json'],
      ['cookie', `gw_session=${good}`],
      ['cookie', `gw_session=${good}`],
    ]);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).reason).toBe('token-duplicate');
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('the access log names each decision reason', async () => {
    await stack.request('GET', '/private', { accept: 'application/json' });
    expect(await accessLogEntry(stack.nginx, (l) => l.reason === 'token-missing' && l.status === 401)).toBeDefined();
  });

  test('a valid token signed with the active key passes', async () => {
    const res = await stack.request('GET', '/private', { accept: 'application/json', cookie: `gw_session=${signWith(header, claimsFor('127.0.0.1', nowSeconds()), stack.secret)}` });
    expect(res.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
  });

  test('key rotation: a token signed with a previous key is still accepted', async () => {
    const prevHeader = headerSegmentFor(stack.previousSecret);
    const res = await stack.request('GET', '/private', { accept: 'application/json', cookie: `gw_session=${signWith(prevHeader, claimsFor('127.0.0.1', nowSeconds()), stack.previousSecret)}` });
    expect(res.status).toBe(200);
    expect(stack.upstream.seen[0].headers['x-payload-username']).toBe('kirk');
  });

  test('a token within the clock leeway after exp still passes; beyond it does not', async () => {
    const now = nowSeconds();
    const within = signWith(header, claimsFor('127.0.0.1', now - 600, { exp: now - 5 }), stack.secret);
    const beyond = signWith(header, claimsFor('127.0.0.1', now - 600, { exp: now - 120 }), stack.secret);
    expect((await stack.request('GET', '/p', { accept: 'application/json', cookie: `gw_session=${within}` })).status).toBe(200);
    expect((await stack.request('GET', '/p', { accept: 'application/json', cookie: `gw_session=${beyond}` })).status).toBe(401);
  });
});

describe('PROXY_IP_BINDING=off', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  beforeAll(async () => {
    stack = await startStack({ env: { PROXY_IP_BINDING: 'off' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('accepts a token bound to another address when binding is explicitly off', async () => {
    const token = signWith(headerSegmentFor(stack.secret), claimsFor('10.9.8.7', nowSeconds()), stack.secret);
    const res = await stack.request('GET', '/private', { accept: 'application/json', cookie: `gw_session=${token}` });
    expect(res.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
  });
});
