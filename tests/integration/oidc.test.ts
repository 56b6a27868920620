/**
 * Azure AD / OIDC sign-in through the real nginx gate and a real OpenID Provider: the full redirect
 * dance (followed by hand, carrying each origin's cookies), groups from the ID token or from Graph on
 * overage (complete, or an error: never a cut list), every rejected callback (state, replay, IdP
 * error, forged, altered, foreign-signed or expired ID tokens), a provider that is down (5xx, dropped
 * connection, no answer), key rotation and metadata changes without a restart, logout at the
 * provider, and front-channel logout checked by iss and sid.
 *
 * The gateway's public origin is http://gw.test (PUBLIC_BASE_URL); requests to it go to nginx's port
 * with `Host: gw.test`, as behind a real DNS name.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { createServer, type Server, type Socket } from 'node:net';
import { startGraphFake, type GraphFake } from '../support/graph-fake.js';
import { rawRequest, setCookies, type HttpResult } from '../support/http.js';
import { oidcWalk, type Jar } from '../support/oidc-walk.js';
import { azureGatewayEnv, startOidcProvider, type IdTokenTamper, type TestOidcProvider } from '../support/oidc-provider.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const PUBLIC = 'http://gw.test';
const CALLBACK = '/login/oauth2/code/azure';
const CLIENT = { id: 'b6a2c1f0-gateway', secret: 'client secret for tests only 1234567890' };
const ALICE = { oid: '00000000-0000-0000-0000-00000000a11c', preferredUsername: 'alice@contoso.example', name: 'Alice Example', email: 'alice@contoso.example', groups: ['g-sales', 'g-ops'] };
/** Entra with the optional claim xms_edov: the tenant owns the e-mail's domain. */
const CAROL = { oid: '00000000-0000-0000-0000-0000000ca201', preferredUsername: 'carol@contoso.example', email: 'carol@contoso.example', xmsEdov: true, groups: ['g-ops'] };
/** As many of these group ids as fit into the token's group budget (MAX_TOKEN_GROUP_BYTES) with PAYLOAD_GROUPS=*. */
const FITTING_GROUPS = 30;
/** The cap this stack runs with (OIDC_MAX_GROUPS). */
const MAX_GROUPS = 1000;
const graphGroups = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `6f1c${String(i).padStart(4, '0')}-0000-4000-8000-000000000000`, displayName: `Gruppe ${i} – Zürich` }));

const { get, follow, sessionOf } = oidcWalk(PUBLIC);
/** The claims of a session token (already verified by the gate in the test that uses them). */
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

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
      accounts: [ALICE, CAROL],
      graphBaseUrl: graph.url,
    });
    stack = await startStack({
      env: azureGatewayEnv(provider, CLIENT, PUBLIC, { GRAPH_BASE_URL: graph.url, OIDC_TIMEOUT_MS: '2000', OIDC_MAX_GROUPS: String(MAX_GROUPS), PAYLOAD_GROUPS: '*' }),
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

  test('on a groups overage the groups come from Graph, across pages, as object ids (the form the ID token uses)', async () => {
    provider.setOverage(true);
    try {
      const jar: Jar = new Map();
      const before = graph.requests().length;
      const { res } = await follow(stack, jar, '/login/oidc?rd=%2F');
      expect(res.status).toBe(200);
      expect(graph.requests().length - before).toBe(2);
      expect(stack.upstream.seen.at(-1)!.headers['x-payload-groups']).toBe('id-1,id-2,id-3');
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
    const audited = await stack.pool.query("SELECT source FROM auth_events WHERE event = 'login_failure' AND reason = 'oidc-rejected'");
    expect(audited.rows).toContainEqual({ source: 'azure' });
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
    ['an ID token signed with a key the provider never published (unknown kid)', 'foreign-key', 'token-key-unknown'],
    ['an ID token whose payload was changed after signing (groups: Domain Admins)', 'payload-altered', 'token-signature-invalid'],
  ];
  for (const [what, mode, reason] of forged) {
    test(`refuses ${what}`, async () => {
      const { jar, callback } = await untilCallback();
      const seen = stack.upstream.seen.length;
      provider.setTamper(mode);
      try {
        await expectRejected(await get(stack, jar, callback.href), jar, reason);
      } finally {
        provider.setTamper('none');
      }
      expect(stack.upstream.seen.length).toBe(seen);
    });
  }

  test('an unknown kid makes the service fetch the JWKS once more before it refuses; a known kid uses the cached keys', async () => {
    await follow(stack, new Map(), '/login/oidc?rd=%2F');
    const cached = provider.jwksRequests();
    await follow(stack, new Map(), '/login/oidc?rd=%2F');
    expect(provider.jwksRequests()).toBe(cached);
    const { jar, callback } = await untilCallback();
    provider.setTamper('foreign-key');
    try {
      await expectRejected(await get(stack, jar, callback.href), jar, 'token-key-unknown');
    } finally {
      provider.setTamper('none');
    }
    expect(provider.jwksRequests()).toBe(cached + 1);
  });

  async function expectUnavailable(res: HttpResult, jar: Jar, reason: string): Promise<void> {
    expect(res.status).toBe(503);
    expect(res.body).toContain('Sign-in unavailable');
    expect(res.body).toContain('identity provider is not reachable right now');
    expect(res.body).toContain('Back to sign-in');
    expect(res.body).not.toMatch(/at \S+ \(|Error:/);
    expect(sessionOf(jar, stack)).toBeUndefined();
    expect(stack.authLogs()).toContain(`"event":"auth_error","src":"azure","reason":"${reason}"`);
  }

  const down: Array<[string, IdTokenTamper]> = [
    ['answers 500 with an HTML page', 'server-error'],
    ['drops the connection', 'drop-connection'],
    ['does not answer within OIDC_TIMEOUT_MS', 'hang'],
  ];
  for (const [what, mode] of down) {
    test(`a token endpoint that ${what} gives the 503 "not reachable" page, not a failed sign-in`, async () => {
      const { jar, callback } = await untilCallback();
      provider.setTamper(mode);
      try {
        await expectUnavailable(await get(stack, jar, callback.href), jar, 'provider-unavailable');
      } finally {
        provider.setTamper('none');
      }
    });
  }

  test('an authorization endpoint that answers error=temporarily_unavailable gives the 503 page', async () => {
    const { jar, callback } = await untilCallback();
    const down = new URL(CALLBACK + `?error=temporarily_unavailable&state=${callback.searchParams.get('state')}`, PUBLIC);
    await expectUnavailable(await get(stack, jar, down.href), jar, 'provider-unavailable');
  });

  test('email_verified: Entra e-mails are unverified unless xms_edov is true (email_verified is not an Entra claim)', async () => {
    const alice: Jar = new Map();
    await follow(stack, alice, '/login/oidc?rd=%2F');
    expect(claimsOf(sessionOf(alice, stack)!)).toMatchObject({ email: ALICE.email, email_verified: false });
    provider.setAccount(CAROL.oid);
    try {
      const carol: Jar = new Map();
      await follow(stack, carol, '/login/oidc?rd=%2F');
      expect(claimsOf(sessionOf(carol, stack)!)).toMatchObject({ email: CAROL.email, email_verified: true });
    } finally {
      provider.setAccount(ALICE.oid);
    }
  });

  describe('Graph groups on overage: the whole list or an error', () => {
    beforeAll(() => provider.setOverage(true));
    afterAll(() => {
      provider.setOverage(false);
      graph.setGroups([{ id: 'id-1', displayName: 'Finance' }, { id: 'id-2', displayName: 'Nested Auditors' }, { id: 'id-3' }]);
      graph.setPageSize(2);
      graph.setLoop(false);
    });

    test(`${MAX_GROUPS} groups (10 Graph pages) are all read and sign in, with a bounded cookie that says how many groups were left out`, async () => {
      graph.setGroups(graphGroups(MAX_GROUPS));
      graph.setPageSize(100);
      const before = graph.requests().length;
      const { jar, callback } = await untilCallback();
      const res = await get(stack, jar, callback.href);
      expect(graph.requests().length - before).toBe(10);
      expect(res.status).toBe(302);
      expect(sessionOf(jar, stack)!.length).toBeLessThan(2600);
      const page = await get(stack, jar, '/');
      expect(page.status).toBe(200);
      const headers = stack.upstream.seen.at(-1)!.headers;
      expect(headers['x-payload-groups_count']).toBe(String(MAX_GROUPS));
      expect(headers['x-payload-groups_digest']).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(String(headers['x-payload-groups']).length).toBeLessThan(1200);
      expect(stack.authLogs()).toMatch(new RegExp(`"event":"auth_success".*"groups":${MAX_GROUPS},"token_groups":\\d+`));
    });

    test(`${FITTING_GROUPS} groups across 3 Graph pages sign in, and the upstream sees every one of them`, async () => {
      graph.setGroups(graphGroups(FITTING_GROUPS));
      graph.setPageSize(10);
      const before = graph.requests().length;
      const { jar, callback } = await untilCallback();
      const res = await get(stack, jar, callback.href);
      expect(res.status).toBe(302);
      expect(graph.requests().length - before).toBe(3);
      const page = await get(stack, jar, '/');
      expect(page.status).toBe(200);
      const seen = stack.upstream.seen.at(-1)!.headers['x-payload-groups'];
      expect(String(seen).split(',')).toHaveLength(FITTING_GROUPS);
      expect(stack.upstream.seen.at(-1)!.headers['x-payload-groups_count']).toBeUndefined();
    });

    test('one group more than OIDC_MAX_GROUPS ends sign-in with a clear 403, no session, and an auth_failure naming why', async () => {
      graph.setGroups(graphGroups(MAX_GROUPS + 1));
      graph.setPageSize(100);
      const { jar, callback } = await untilCallback();
      const res = await get(stack, jar, callback.href);
      expect(res.status).toBe(403);
      expect(res.body).toContain(`more than the ${MAX_GROUPS} this gateway is set up to accept`);
      expect(sessionOf(jar, stack)).toBeUndefined();
      expect(stack.authLogs()).toMatch(new RegExp(`"event":"auth_failure","user":"${ALICE.preferredUsername}","src":"azure","reason":"too-many-groups","max_groups":${MAX_GROUPS}`));
    });

    test('a nextLink that loops back ends sign-in with a 503 page and an auth_error naming the loop', async () => {
      graph.setGroups(graphGroups(5));
      graph.setPageSize(2);
      graph.setLoop(true);
      try {
        const { jar, callback } = await untilCallback();
        const res = await get(stack, jar, callback.href);
        expect(res.status).toBe(503);
        expect(res.body).toContain('Microsoft Graph returned a group list that does not end');
        expect(sessionOf(jar, stack)).toBeUndefined();
        expect(stack.authLogs()).toContain('"src":"azure","reason":"graph-loop"');
      } finally {
        graph.setLoop(false);
      }
    });
  });

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

  describe('front-channel logout (OpenID Connect Front-Channel Logout 1.0)', () => {
    async function signedIn(): Promise<{ session: string; idpSid: string }> {
      const jar: Jar = new Map();
      await follow(stack, jar, '/login/oidc?rd=%2F');
      const session = sessionOf(jar, stack)!;
      const idpSid = claimsOf(session).idp_sid;
      expect(typeof idpSid).toBe('string');
      return { session, idpSid: idpSid as string };
    }
    const frontchannel = (query: string, session: string) =>
      rawRequest(stack.proxyPort, 'GET', `/logout/frontchannel${query}`, { host: 'gw.test', cookie: `${stack.cookieName}=${session}` });
    const clearsSession = (res: HttpResult) => setCookies(res).some((c) => c.startsWith(`${stack.cookieName}=;`));

    const refusals: Array<[string, (iss: string, sid: string) => string, string]> = [
      ['a bare link from another site (no iss, no sid)', () => '', 'sid-missing'],
      ['the right issuer with another sid', (iss) => `?iss=${encodeURIComponent(iss)}&sid=not-your-session`, 'sid-mismatch'],
      ['the right sid with another issuer', (_iss, sid) => `?iss=${encodeURIComponent('https://evil.example/v2.0')}&sid=${encodeURIComponent(sid)}`, 'iss-mismatch'],
    ];
    for (const [what, query, reason] of refusals) {
      test(`refuses ${what}: the session stays`, async () => {
        const { session, idpSid } = await signedIn();
        const res = await frontchannel(query(provider.issuer, idpSid), session);
        expect(res.status).toBe(400);
        expect(res.body).toContain('does not match your current session');
        expect(clearsSession(res)).toBe(false);
        expect(stack.authLogs()).toContain(`"event":"logout_refused","path":"/logout/frontchannel","reason":"${reason}"`);
        const still = await rawRequest(stack.proxyPort, 'GET', '/reports', { host: 'gw.test', cookie: `${stack.cookieName}=${session}` });
        expect(still.status).toBe(200);
      });
    }

    test('the provider\'s request with this session\'s iss and sid clears the cookie (no-store 200)', async () => {
      const { session, idpSid } = await signedIn();
      const res = await frontchannel(`?iss=${encodeURIComponent(provider.issuer)}&sid=${encodeURIComponent(idpSid)}`, session);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toContain('no-store');
      expect(setCookies(res)).toContain(`${stack.cookieName}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0`);
    });

    test('the provider\'s request ends, on the server, every gateway session under its sid, even one whose cookie it does not carry', async () => {
      const { session, idpSid } = await signedIn();
      const sid = claimsOf(session).sid as string;
      const stored = await stack.pool.query('SELECT source, src, idp_sid, revoked_at FROM sessions WHERE sid = $1', [sid]);
      expect(stored.rows).toEqual([{ source: 'oidc', src: 'azure', idp_sid: idpSid, revoked_at: null }]);
      // A cross-site iframe often carries no cookie (SameSite=Lax): the sid alone names the sessions.
      const res = await rawRequest(stack.proxyPort, 'GET', `/logout/frontchannel?iss=${encodeURIComponent(provider.issuer)}&sid=${encodeURIComponent(idpSid)}`, { host: 'gw.test' });
      expect(res.status).toBe(200);
      const ended = await stack.pool.query('SELECT revoke_reason FROM sessions WHERE sid = $1', [sid]);
      expect(ended.rows).toEqual([{ revoke_reason: 'frontchannel' }]);
      const about = await rawRequest(stack.proxyPort, 'GET', '/auth/about', { host: 'gw.test', cookie: `${stack.cookieName}=${session}` });
      expect(about.status).toBe(401);
    });

    test('Entra sends sid without iss: that is accepted for the azure flavour', async () => {
      const { session, idpSid } = await signedIn();
      const res = await frontchannel(`?sid=${encodeURIComponent(idpSid)}`, session);
      expect(res.status).toBe(200);
      expect(clearsSession(res)).toBe(true);
    });
  });
});

describe('a provider that rotates its key or moves an endpoint, without restarting the gateway', () => {
  const TTL_SECONDS = 2;
  let stack: Stack;
  let provider: TestOidcProvider;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + CALLBACK], accounts: [ALICE] });
    stack = await startStack({
      env: azureGatewayEnv(provider, CLIENT, PUBLIC, { OIDC_TIMEOUT_MS: '2000', OIDC_METADATA_TTL_SECONDS: String(TTL_SECONDS) }),
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await provider?.close();
  });

  async function signIn(): Promise<HttpResult> {
    const jar: Jar = new Map();
    const { res, url } = await follow(stack, jar, '/login/oidc?rd=%2Freports');
    if (res.status === 200) expect(new URL(url).pathname).toBe('/reports');
    return res;
  }

  test('a new signing key (new kid) works on the very next sign-in: the unknown kid fetches the JWKS once more', async () => {
    expect((await signIn()).status).toBe(200);
    const downloads = provider.jwksRequests();
    provider.rebuild({ kid: 'rotated-key-2' });
    expect((await signIn()).status).toBe(200);
    expect(provider.jwksRequests()).toBe(downloads + 1);
    expect(stack.authLogs()).toMatch(/"event":"auth_success".*"src":"azure"/);
  });

  test('a moved authorization endpoint and a new key are picked up after OIDC_METADATA_TTL_SECONDS', async () => {
    expect((await signIn()).status).toBe(200);
    provider.rebuild({ kid: 'rotated-key-3', authorizationPath: '/oauth2/v2.0/authorize' });
    await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 300));
    const start = await get(stack, new Map(), '/login/oidc?rd=%2F');
    expect(String(start.headers.location)).toContain(`${provider.issuer}/oauth2/v2.0/authorize?`);
    expect((await signIn()).status).toBe(200);
  });
});

describe('without OIDC', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  beforeAll(async () => {
    stack = await startStack();
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('GET /logout/frontchannel is not there (404) and clears nothing', async () => {
    await stack.createUser('kirk', 'correct horse battery staple');
    const { session } = await stack.login('kirk', 'correct horse battery staple');
    const res = await rawRequest(stack.proxyPort, 'GET', '/logout/frontchannel', { host: 'gw.test', cookie: session! });
    expect(res.status).toBe(404);
    expect(setCookies(res).some((c) => c.startsWith(stack.cookieName + '='))).toBe(false);
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
