/**
 * Azure AD / OIDC sign-in through the real nginx gate and a real OpenID Provider: the full redirect
 * dance (followed by hand, carrying each origin's cookies), groups from the ID token or from Graph on
 * overage, every rejected callback (state, replay, IdP error, forged or expired ID tokens), a provider
 * that does not answer, and logout at the provider.
 *
 * The gateway's public origin is http://gw.test (PUBLIC_BASE_URL); requests to it go to nginx's port
 * with `Host: gw.test`, as behind a real DNS name.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { createServer, type Server, type Socket } from 'node:net';
import { startGraphFake, type GraphFake } from '../support/graph-fake.js';
import { rawRequest, setCookies, type HttpResult } from '../support/http.js';
import { startOidcProvider, type IdTokenTamper, type TestOidcProvider } from '../support/oidc-provider.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const PUBLIC = 'http://gw.test';
const CALLBACK = '/login/oauth2/code/azure';
const CLIENT = { id: 'b6a2c1f0-gateway', secret: 'client secret for tests only 1234567890' };
const ALICE = { oid: '00000000-0000-0000-0000-00000000a11c', preferredUsername: 'alice@contoso.example', name: 'Alice Example', email: 'alice@contoso.example', groups: ['g-sales', 'g-ops'] };

type Jar = Map<string, Map<string, string>>;

function storeCookies(jar: Jar, host: string, res: HttpResult): void {
  const cookies = jar.get(host) ?? new Map<string, string>();
  jar.set(host, cookies);
  for (const line of setCookies(res)) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=.*1970/i.test(a));
    if (expired || value === '') cookies.delete(name);
    else cookies.set(name, value);
  }
}

/** One GET to the gateway (by PUBLIC origin) or the provider, with that origin's cookies. */
async function get(stack: Stack, jar: Jar, url: string): Promise<HttpResult> {
  const u = new URL(url, PUBLIC);
  const gateway = u.origin === PUBLIC;
  const host = gateway ? 'gw.test' : u.host;
  const cookie = [...(jar.get(host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await rawRequest(gateway ? stack.proxyPort : Number(u.port), 'GET', u.pathname + u.search, {
    host,
    accept: 'text/html',
    ...(cookie === '' ? {} : { cookie }),
  });
  storeCookies(jar, host, res);
  return res;
}

/** Follows redirects from `url` until a non-redirect, or until `stopAt` matches the next URL. */
async function follow(stack: Stack, jar: Jar, url: string, stopAt?: (next: URL) => boolean): Promise<{ res: HttpResult; url: string }> {
  let current = new URL(url, PUBLIC).href;
  for (let hop = 0; hop < 20; hop++) {
    const res = await get(stack, jar, current);
    const location = res.headers.location;
    if (res.status < 300 || res.status > 399 || typeof location !== 'string') return { res, url: current };
    const next = new URL(location, current);
    if (stopAt?.(next)) return { res, url: next.href };
    current = next.href;
  }
  throw new Error('too many redirects');
}

const sessionOf = (jar: Jar, stack: Stack) => jar.get('gw.test')?.get(stack.cookieName);

describe('Azure AD / OIDC sign-in through nginx', () => {
  let stack: Stack;
  let provider: TestOidcProvider;
  let graph: GraphFake;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    graph = await startGraphFake({
      groups: [{ id: 'id-1', displayName: 'Finance' }, { id: 'id-2', displayName: 'Nested Auditors' }, { id: 'id-3' }],
      isValidToken: (token) => provider.isAccessToken(token),
    });
    provider = await startOidcProvider({
      clientId: CLIENT.id,
      clientSecret: CLIENT.secret,
      redirectUris: [PUBLIC + CALLBACK],
      postLogoutRedirectUris: [PUBLIC + '/login'],
      accounts: [ALICE],
      graphBaseUrl: graph.url,
    });
    stack = await startStack({
      env: {
        AZURE_TENANT_ID: provider.tenant,
        AZURE_CLIENT_ID: CLIENT.id,
        AZURE_CLIENT_SECRET: CLIENT.secret,
        OIDC_ISSUER: provider.issuer,
        GRAPH_BASE_URL: graph.url,
        PUBLIC_BASE_URL: PUBLIC,
        ALLOW_INSECURE_HTTP_IDP: 'true',
        OIDC_TIMEOUT_MS: '2000',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await provider?.close();
    await graph?.close();
  });

  test('the login page offers "Sign in with Microsoft" next to the password form, keeping the return path', async () => {
    const page = await get(stack, new Map(), '/login?rd=%2Freports');
    expect(page.status).toBe(200);
    expect(page.body).toContain('Sign in with Microsoft');
    expect(page.body).toContain('href="/login/oidc?rd=%2Freports"');
    expect(page.body).toContain('action="/login"');
  });

  test('a user signs in at the provider and the upstream sees the Azure identity and groups', async () => {
    const jar: Jar = new Map();
    const start = await get(stack, jar, '/login/oidc?rd=%2Freports');
    expect(start.status).toBe(302);
    expect(String(start.headers.location)).toMatch(new RegExp(`^${provider.issuer.replace(/[.]/g, '\\.')}/auth\\?`));
    const authorize = new URL(String(start.headers.location));
    expect(authorize.searchParams.get('redirect_uri')).toBe(PUBLIC + CALLBACK);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(setCookies(start).find((c) => c.startsWith('gw_oidc='))).toMatch(/; HttpOnly; SameSite=Lax; Path=\/; Max-Age=600$/);

    const { res, url } = await follow(stack, jar, String(start.headers.location));
    expect(res.status).toBe(200);
    expect(new URL(url).pathname).toBe('/reports');
    expect(sessionOf(jar, stack)).toBeDefined();
    expect(jar.get('gw.test')?.has('gw_oidc')).toBe(false);
    expect(stack.upstream.seen.at(-1)!.headers).toMatchObject({
      'x-payload-username': ALICE.preferredUsername,
      'x-payload-name': ALICE.name,
      'x-payload-email': ALICE.email,
      'x-payload-groups': 'g-sales,g-ops',
      'x-payload-src': 'azure',
      'x-payload-sub': `azure:${provider.tenant}:${ALICE.oid}`,
    });
    expect(stack.authLogs()).toMatch(/"event":"auth_success".*"src":"azure"/);
  });

  test('on a groups overage the groups come from Graph, across pages, by displayName or id', async () => {
    provider.setOverage(true);
    try {
      const jar: Jar = new Map();
      const before = graph.requests().length;
      const { res } = await follow(stack, jar, '/login/oidc?rd=%2F');
      expect(res.status).toBe(200);
      expect(graph.requests().length - before).toBe(2);
      expect(stack.upstream.seen.at(-1)!.headers['x-payload-groups']).toBe('Finance,Nested Auditors,id-3');
    } finally {
      provider.setOverage(false);
    }
  });

  /** Runs the flow up to the callback URL (not yet visited) with a fresh jar. */
  async function untilCallback(): Promise<{ jar: Jar; callback: URL }> {
    const jar: Jar = new Map();
    const { url } = await follow(stack, jar, '/login/oidc?rd=%2Fsecret', (next) => next.origin === PUBLIC && next.pathname === CALLBACK);
    return { jar, callback: new URL(url) };
  }

  async function expectRejected(res: HttpResult, jar: Jar, reason: string): Promise<void> {
    expect(res.status).toBe(401);
    expect(res.body).toContain('Back to sign-in');
    expect(res.body).toContain('did not complete');
    expect(sessionOf(jar, stack)).toBeUndefined();
    expect(setCookies(res).some((c) => c.startsWith(stack.cookieName + '=') && !c.startsWith(stack.cookieName + '=;'))).toBe(false);
    expect(stack.authLogs()).toContain(`"event":"auth_failure","src":"azure","reason":"${reason}"`);
  }

  test('a replayed callback finds no state (cookie cleared), and a replay with the old cookie has its code refused', async () => {
    const { jar, callback } = await untilCallback();
    const stateCookie = jar.get('gw.test')!.get('gw_oidc')!;
    const first = await get(stack, jar, callback.href);
    expect(first.status).toBe(302);
    expect(first.headers.location).toBe('/secret');

    const replay: Jar = new Map();
    await expectRejected(await get(stack, replay, callback.href), replay, 'state-missing');

    const withOldCookie: Jar = new Map([['gw.test', new Map([['gw_oidc', stateCookie]])]]);
    await expectRejected(await get(stack, withOldCookie, callback.href), withOldCookie, 'code-rejected');
  });

  test('a callback whose state was tampered with is refused', async () => {
    const { jar, callback } = await untilCallback();
    callback.searchParams.set('state', 'attacker-chosen-state');
    const seen = stack.upstream.seen.length;
    await expectRejected(await get(stack, jar, callback.href), jar, 'state-mismatch');
    expect(stack.upstream.seen.length).toBe(seen);
  });

  test('an error from the provider (access_denied) shows the error page without a session', async () => {
    const { jar, callback } = await untilCallback();
    const denied = new URL(CALLBACK + `?error=access_denied&state=${callback.searchParams.get('state')}`, PUBLIC);
    await expectRejected(await get(stack, jar, denied.href), jar, 'idp-error');
  });

  const forged: Array<[string, IdTokenTamper, string]> = [
    ['an expired ID token', 'expired', 'token-expired'],
    ['an ID token from another issuer', 'wrong-issuer', 'issuer-mismatch'],
    ['an ID token for another audience (client_id)', 'wrong-audience', 'audience-mismatch'],
    ['an unsigned ID token (alg none)', 'alg-none', 'token-invalid'],
  ];
  for (const [what, mode, reason] of forged) {
    test(`refuses ${what}`, async () => {
      const { jar, callback } = await untilCallback();
      provider.setTamper(mode);
      try {
        await expectRejected(await get(stack, jar, callback.href), jar, reason);
      } finally {
        provider.setTamper('none');
      }
    });
  }

  test('logout of an Azure session clears the cookie and sends the browser to the provider end_session_endpoint', async () => {
    const jar: Jar = new Map();
    await follow(stack, jar, '/login/oidc?rd=%2F');
    const session = sessionOf(jar, stack)!;
    const res = await rawRequest(stack.proxyPort, 'POST', '/logout', { host: 'gw.test', origin: PUBLIC, cookie: `${stack.cookieName}=${session}`, 'content-length': '0' }, '');
    expect(res.status).toBe(303);
    const location = new URL(String(res.headers.location));
    expect(location.origin + location.pathname).toBe(`${provider.issuer}/session/end`);
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(PUBLIC + '/login');
    expect(location.searchParams.get('client_id')).toBe(CLIENT.id);
    expect(setCookies(res)).toContain(`${stack.cookieName}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0`);
  });

  test('front-channel logout clears the session cookie with a no-store 200', async () => {
    const res = await rawRequest(stack.proxyPort, 'GET', '/logout/frontchannel', { host: 'gw.test' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toContain('no-store');
    expect(setCookies(res)).toContain(`${stack.cookieName}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0`);
  });
});

describe('OIDC-only sign-in with a provider that does not answer', () => {
  let stack: Stack;
  let blackHole: Server;
  const held = new Set<Socket>();
  const test = stackTest(() => stack);

  beforeAll(async () => {
    // Accepts connections and never answers: the slowest way for a provider to be down.
    blackHole = createServer((socket) => {
      held.add(socket);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const port = (blackHole.address() as { port: number }).port;
    stack = await startStack({
      env: {
        OIDC_ISSUER: `http://127.0.0.1:${port}/tenant/v2.0`,
        OIDC_CLIENT_ID: CLIENT.id,
        OIDC_CLIENT_SECRET: CLIENT.secret,
        OIDC_DISPLAY_NAME: 'Example ID',
        PUBLIC_BASE_URL: PUBLIC,
        ALLOW_INSECURE_HTTP_IDP: 'true',
        OIDC_TIMEOUT_MS: '800',
        LOGIN_METHODS: 'oidc',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => blackHole?.close(() => resolve()));
  });

  test('the login page shows only the provider button, and POST /login is not there', async () => {
    const page = await get(stack, new Map(), '/login');
    expect(page.body).toContain('Sign in with Example ID');
    expect(page.body).not.toContain('action="/login"');
    const post = await rawRequest(stack.proxyPort, 'POST', '/login', { host: 'gw.test', 'content-type': 'application/x-www-form-urlencoded' }, 'username=a&password=b');
    expect(post.status).toBe(404);
  });

  test('starting sign-in answers 503 within the timeout instead of hanging', async () => {
    const started = Date.now();
    const res = await get(stack, new Map(), '/login/oidc?rd=%2F');
    expect(res.status).toBe(503);
    expect(res.body).toContain('identity provider is not reachable');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(stack.authLogs()).toMatch(/"event":"auth_error","src":"oidc","reason":"discovery-failed"/);
  });
});
