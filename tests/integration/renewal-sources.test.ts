/**
 * /auth/renew asks each session's identity source again (issue 9), against real parts: a real
 * OpenID Provider (oidc-provider, refresh tokens rotated on every use, a reused one revoking the
 * grant), the Tableau fake, and a custom module with a `refresh` hook. A refusal ends the session
 * (401, row revoked, renewal_refused event); a source that does not answer gives 503 and keeps it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { openIdpRefresh } from '../../auth-service/src/services/idp-refresh.js';
import { startGraphFake, type GraphFake } from '../support/graph-fake.js';
import { rawRequest, setCookies, type HttpResult } from '../support/http.js';
import { oidcWalk, type Jar } from '../support/oidc-walk.js';
import { azureGatewayEnv, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { stackTest, startStack, strongSecret, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sid: string; groups: string[] };

interface SessionRow {
  revoke_reason: string | null;
  groups: string[];
  idp_refresh: string | null;
}

/** Helpers over one stack: renew straight at the auth service (from 127.0.0.1, as nginx's $remote_addr at sign-in). */
function renewalHelpers(stackOf: () => Stack) {
  const renew = (token: string) => rawRequest(stackOf().authPort, 'POST', '/auth/renew', { cookie: `${stackOf().cookieName}=${token}`, accept: 'application/json' });
  const renewedToken = (res: HttpResult) =>
    setCookies(res)
      .map((c) => c.split(';')[0]!)
      .find((c) => c.startsWith(`${stackOf().cookieName}=`) && c.length > stackOf().cookieName.length + 1)
      ?.slice(stackOf().cookieName.length + 1);
  const rowOf = async (sid: string) => (await stackOf().pool.query<SessionRow>('SELECT revoke_reason, groups, idp_refresh FROM sessions WHERE sid = $1', [sid])).rows[0]!;
  const lastEvent = async (sid: string) =>
    (await stackOf().pool.query<{ event: string; reason: string | null }>('SELECT event, reason FROM auth_events WHERE sid = $1 ORDER BY id DESC LIMIT 1', [sid])).rows[0];
  /** The renewal answers 503 `reason` without a new cookie, and the session is not ended. */
  const expectUnavailableAndKept = async (token: string, reason: string) => {
    const res = await renew(token);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: reason });
    expect(renewedToken(res)).toBeUndefined();
    expect((await rowOf(claimsOf(token).sid)).revoke_reason).toBeNull();
  };
  /** While `fault` is on, renewal answers as expectUnavailableAndKept says, within `withinMs`; once it is off, the session renews. */
  const expectUnavailableWhile = async (token: string, reason: string, fault: { on: () => void; off: () => void }, withinMs: number) => {
    fault.on();
    try {
      const started = Date.now();
      await expectUnavailableAndKept(token, reason);
      expect(Date.now() - started).toBeLessThan(withinMs);
    } finally {
      fault.off();
    }
    expect((await renew(token)).status).toBe(204);
  };
  return { renew, renewedToken, rowOf, lastEvent, expectUnavailableWhile };
}

describe('renewal of an Entra / OIDC session redeems its refresh token at the provider', () => {
  const PUBLIC = 'http://gw.test';
  const CALLBACK = '/login/oauth2/code/azure';
  const CLIENT = { id: 'b6a2c1f0-gateway', secret: 'client secret for tests only 1234567890' };
  const ALICE = { oid: '00000000-0000-0000-0000-00000000a11c', preferredUsername: 'alice@contoso.example', groups: ['g-sales', 'g-ops'] };
  const CAROL = { oid: '00000000-0000-0000-0000-0000000ca201', preferredUsername: 'carol@contoso.example', groups: ['g-ops'] };
  const { follow, sessionOf } = oidcWalk(PUBLIC);
  let stack: Stack;
  let provider: TestOidcProvider;
  let graph: GraphFake;
  const test = stackTest(() => stack);
  const { renew, renewedToken, rowOf, lastEvent, expectUnavailableWhile } = renewalHelpers(() => stack);

  beforeAll(async () => {
    graph = await startGraphFake({ groups: [{ id: 'id-1' }, { id: 'id-2' }], isValidToken: (token) => provider.isAccessToken(token) });
    provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + CALLBACK], accounts: [ALICE, CAROL], refreshTokens: true, graphBaseUrl: graph.url });
    stack = await startStack({ env: azureGatewayEnv(provider, CLIENT, PUBLIC, { GRAPH_BASE_URL: graph.url, OIDC_TIMEOUT_MS: '2000', PAYLOAD_GROUPS: '*' }) });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await provider?.close();
    await graph?.close();
  });

  async function signIn(oid: string): Promise<string> {
    provider.setAccount(oid);
    const jar: Jar = new Map();
    const { res } = await follow(stack, jar, '/login/oidc?rd=%2F');
    expect(res.status).toBe(200);
    return sessionOf(jar, stack)!;
  }

  test('sign-in asks for offline_access and keeps the refresh token sealed; a renewal applies the groups the provider names now and stores the rotated token, sealed', async () => {
    const token = await signIn(ALICE.oid);
    expect(provider.authorizationScopes().at(-1)!.split(' ')).toContain('offline_access');
    const { sid } = claimsOf(token);
    const signedIn = await rowOf(sid);
    expect(signedIn.idp_refresh).not.toBeNull();
    const first = openIdpRefresh(signedIn.idp_refresh!, sid, [stack.secret])!;
    expect(first.length).toBeGreaterThan(20);
    expect(signedIn.idp_refresh).not.toContain(first);
    // Bound to its row: the same value does not open for another sid.
    expect(openIdpRefresh(signedIn.idp_refresh!, `${sid}x`, [stack.secret])).toBeNull();

    ALICE.groups = ['g-ops', 'g-audit'];
    const refreshesBefore = provider.refreshRequests();
    try {
      const res = await renew(token);
      expect(res.status).toBe(204);
      expect(provider.refreshRequests()).toBe(refreshesBefore + 1);
      expect(claimsOf(renewedToken(res)!).groups).toEqual(['g-ops', 'g-audit']);
      const renewed = await rowOf(sid);
      expect(renewed.groups).toEqual(['g-ops', 'g-audit']);
      const rotated = openIdpRefresh(renewed.idp_refresh!, sid, [stack.secret])!;
      expect(rotated).not.toBe(first);
      expect(renewed.idp_refresh).not.toContain(rotated);
      // The rotated token is the live one: the next renewal works with it.
      expect((await renew(renewedToken(res)!)).status).toBe(204);
    } finally {
      ALICE.groups = ['g-sales', 'g-ops'];
    }
  });

  test('the provider refuses the refresh (account disabled there) → 401 idp-refresh-refused, the session ended, its token dropped, renewal_refused recorded', async () => {
    const token = await signIn(CAROL.oid);
    const { sid } = claimsOf(token);
    provider.disableAccount(CAROL.oid);
    try {
      const res = await renew(token);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toEqual({ error: 'unauthenticated', reason: 'idp-refresh-refused', login: '/login' });
      expect(renewedToken(res)).toBeUndefined();
      const row = await rowOf(sid);
      expect(row.revoke_reason).toBe('idp-refresh-refused');
      expect(row.idp_refresh).toBeNull();
      expect(await lastEvent(sid)).toEqual({ event: 'renewal_refused', reason: 'idp-refresh-refused' });
      // Ended for good: enabled again at the provider, the session stays ended.
      provider.disableAccount(CAROL.oid, false);
      expect(JSON.parse((await renew(token)).body)).toMatchObject({ reason: 'session-ended' });
    } finally {
      provider.disableAccount(CAROL.oid, false);
    }
  });

  test('on a groups overage the renewed groups come from Graph, read with the new access token, as at sign-in', async () => {
    provider.setOverage(true);
    try {
      const token = await signIn(ALICE.oid);
      expect(claimsOf(token).groups).toEqual(['id-1', 'id-2']);
      graph.setGroups([{ id: 'id-2' }, { id: 'id-3' }]);
      const before = graph.requests().length;
      const res = await renew(token);
      expect(res.status).toBe(204);
      expect(graph.requests().length).toBe(before + 1);
      expect(claimsOf(renewedToken(res)!).groups).toEqual(['id-2', 'id-3']);
    } finally {
      provider.setOverage(false);
      graph.setGroups([{ id: 'id-1' }, { id: 'id-2' }]);
    }
  });

  for (const [what, tamper] of [
    ['fails (500 at the token endpoint)', 'server-error'],
    ['does not answer within OIDC_TIMEOUT_MS', 'hang'],
  ] as const) {
    test(`the provider ${what} → 503 idp-unavailable, no token, the session kept; renewal works once it is back`, async () => {
      const token = await signIn(ALICE.oid);
      await expectUnavailableWhile(token, 'idp-unavailable', { on: () => provider.setTamper(tamper), off: () => provider.setTamper('none') }, 4500);
    });
  }

  test('a session without a refresh token (signed in before this version, or a provider that gave none) renews with its stored groups, without asking the provider', async () => {
    const token = await signIn(ALICE.oid);
    const { sid } = claimsOf(token);
    await stack.pool.query('UPDATE sessions SET idp_refresh = NULL WHERE sid = $1', [sid]);
    ALICE.groups = ['g-changed'];
    const before = provider.refreshRequests();
    try {
      const res = await renew(token);
      expect(res.status).toBe(204);
      expect(claimsOf(renewedToken(res)!).groups).toEqual(['g-sales', 'g-ops']);
      expect(provider.refreshRequests()).toBe(before);
    } finally {
      ALICE.groups = ['g-sales', 'g-ops'];
    }
  });

  test('two renewals of one session at once both succeed: the rotating refresh token is never redeemed twice (which would revoke the grant)', async () => {
    const token = await signIn(ALICE.oid);
    const { sid } = claimsOf(token);
    const before = provider.refreshRequests();
    const results = await Promise.all([renew(token), renew(token), renew(token)]);
    expect(results.map((r) => r.status)).toEqual([204, 204, 204]);
    expect(provider.refreshRequests()).toBe(before + 3);
    expect((await rowOf(sid)).revoke_reason).toBeNull();
    expect((await renew(token)).status).toBe(204);
  });

  test('two auth-service instances renewing one session at once take turns with the refresh token (the row\'s lease), so neither reuses it', async () => {
    const otherPort = await stack.startAnotherAuthService();
    const token = await signIn(ALICE.oid);
    const { sid } = claimsOf(token);
    const renewAt = (port: number) => rawRequest(port, 'POST', '/auth/renew', { cookie: `${stack.cookieName}=${token}`, accept: 'application/json' });
    const before = provider.refreshRequests();
    const results = await Promise.all([renewAt(stack.authPort), renewAt(otherPort), renewAt(stack.authPort), renewAt(otherPort)]);
    expect(results.map((r) => r.status)).toEqual([204, 204, 204, 204]);
    expect(provider.refreshRequests()).toBe(before + 4);
    const row = (await stack.pool.query<{ revoke_reason: string | null; idp_refresh_lease: Date | null }>('SELECT revoke_reason, idp_refresh_lease FROM sessions WHERE sid = $1', [sid])).rows[0]!;
    expect(row).toEqual({ revoke_reason: null, idp_refresh_lease: null });
  });

  test('a refresh lease another instance left behind (crashed mid-refresh) only delays renewal until it runs out', async () => {
    const token = await signIn(ALICE.oid);
    const { sid } = claimsOf(token);
    await stack.pool.query("UPDATE sessions SET idp_refresh_lease = now() + interval '1 second' WHERE sid = $1", [sid]);
    const started = Date.now();
    const res = await renew(token);
    expect(res.status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
  });

  test("the provider refuses the gateway itself (invalid_client: an expired client secret) → 503 idp-unavailable, the session kept; renewal works once the secret is fixed", async () => {
    const token = await signIn(CAROL.oid);
    await stack.restartAuthService({ AZURE_CLIENT_SECRET: 'an expired client secret 0987654321' });
    try {
      const res = await renew(token);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body)).toEqual({ error: 'idp-unavailable' });
      expect((await rowOf(claimsOf(token).sid)).revoke_reason).toBeNull();
      expect(stack.authLogs()).toMatch(/"reason":"client-rejected".*"idp_error":"invalid_client"/);
    } finally {
      await stack.restartAuthService({});
    }
    expect((await renew(token)).status).toBe(204);
  });

  test('key rotation: a refresh token sealed under the old JWT_SECRET still renews in the grace period and is sealed again under the new one (last: restarts the service)', async () => {
    const token = await signIn(ALICE.oid);
    const { sid } = claimsOf(token);
    const rotated = strongSecret();
    await stack.restartAuthService({ JWT_SECRET: rotated, JWT_PREVIOUS_SECRETS: `${stack.secret}@${new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z')}` });
    const res = await renew(token);
    expect(res.status).toBe(204);
    const sealed = (await rowOf(sid)).idp_refresh!;
    expect(openIdpRefresh(sealed, sid, [rotated])).not.toBeNull();
    expect(openIdpRefresh(sealed, sid, [stack.secret])).toBeNull();
  });
});

describe('renewal of a Tableau session asks Tableau whether its token is still accepted', () => {
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000aa' };
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const { renew, rowOf, lastEvent, expectUnavailableWhile } = renewalHelpers(() => stack);

  beforeAll(async () => {
    tableau = await startTableauFake({ site: SITE, users: [{ name: 'tina', password: 'tableau only password 7', siteRole: 'Explorer', groups: ['Sales'] }] });
    stack = await startStack({ env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  async function signIn(): Promise<string> {
    tableau.setFault('none');
    const { session } = await stack.login('tina', 'tableau only password 7', '/');
    return session!.slice(stack.cookieName.length + 1);
  }
  const currentSessionCalls = () => tableau.requests.filter((r) => r.method === 'GET' && r.url.endsWith('/sessions/current')).length;

  test('a live Tableau token: Get Current Server Session answers 200 and the session is renewed', async () => {
    const token = await signIn();
    const before = currentSessionCalls();
    const res = await renew(token);
    expect(res.status).toBe(204);
    expect(currentSessionCalls()).toBe(before + 1);
    expect(tableau.requests.at(-1)!.headers['x-tableau-auth']).toBe(tableau.issuedTokens().at(-1));
  });

  test('Tableau no longer accepts the token (401) → 401 tableau-session-expired, the session ended', async () => {
    const token = await signIn();
    const { sid } = claimsOf(token);
    tableau.expireAllTokens();
    const res = await renew(token);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'tableau-session-expired' });
    expect((await rowOf(sid)).revoke_reason).toBe('tableau-session-expired');
    expect(await lastEvent(sid)).toEqual({ event: 'renewal_refused', reason: 'tableau-session-expired' });
  });

  for (const [what, fault] of [
    ['drops the connection', 'sessions-down'],
    ['answers 500', '500'],
    ['does not answer within TABLEAU_TIMEOUT_MS', 'slow'],
  ] as const) {
    test(`Tableau ${what} → 503 tableau-unavailable, no token, the session kept`, async () => {
      const token = await signIn();
      await expectUnavailableWhile(token, 'tableau-unavailable', { on: () => tableau.setFault(fault), off: () => tableau.setFault('none') }, 5000);
    });
  }
});

describe('renewal of a custom-module session calls its refresh hook', () => {
  let stack: Stack;
  let dir: string;
  let stateFile: string;
  const test = stackTest(() => stack);
  const { renew, renewedToken, rowOf, lastEvent, expectUnavailableWhile } = renewalHelpers(() => stack);
  const setHook = (state: { mode: 'accept' | 'refuse' | 'throw' | 'hang'; groups?: string[] }) => writeFileSync(stateFile, JSON.stringify(state));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-refresh-hook-'));
    stateFile = join(dir, 'state.json');
    setHook({ mode: 'accept', groups: ['Engines'] });
    const modulePath = join(dir, 'hooked.mjs');
    writeFileSync(
      modulePath,
      `import { readFileSync } from 'node:fs';
const state = () => JSON.parse(readFileSync(${JSON.stringify(stateFile)}, 'utf8'));
export default {
  id: 'hooked',
  async authenticate({ username, password }) {
    if (username !== 'ada') return { kind: 'not-found' };
    if (password !== 'analytical engine 1843') return { kind: 'invalid' };
    return { kind: 'success', identity: { sub: 'ada-1', username: 'ada', groups: ['Engines'] } };
  },
  async refresh(identity) {
    const s = state();
    if (s.mode === 'refuse') return { kind: 'refused' };
    if (s.mode === 'throw') throw new Error('directory down');
    if (s.mode === 'hang') return new Promise(() => {});
    return { kind: 'success', identity: { ...identity, groups: s.groups } };
  },
};
`,
    );
    stack = await startStack({ env: { AUTH_CUSTOM_MODULE: modulePath, PAYLOAD_GROUPS: '*' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function signIn(): Promise<string> {
    setHook({ mode: 'accept', groups: ['Engines'] });
    const { session } = await stack.login('ada', 'analytical engine 1843', '/');
    return session!.slice(stack.cookieName.length + 1);
  }

  test('the hook accepts with other groups → renewed with those groups, stored as the full list', async () => {
    const token = await signIn();
    setHook({ mode: 'accept', groups: ['Engines', 'Looms'] });
    const res = await renew(token);
    expect(res.status).toBe(204);
    expect(claimsOf(renewedToken(res)!).groups).toEqual(['Engines', 'Looms']);
    expect((await rowOf(claimsOf(token).sid)).groups).toEqual(['Engines', 'Looms']);
  });

  test('the hook refuses → 401 custom-refresh-refused, the session ended', async () => {
    const token = await signIn();
    const { sid } = claimsOf(token);
    setHook({ mode: 'refuse' });
    const res = await renew(token);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'custom-refresh-refused' });
    expect((await rowOf(sid)).revoke_reason).toBe('custom-refresh-refused');
    expect(await lastEvent(sid)).toEqual({ event: 'renewal_refused', reason: 'custom-refresh-refused' });
  });

  test('the hook throws → 503 idp-unavailable, no token, the session kept', async () => {
    const token = await signIn();
    await expectUnavailableWhile(token, 'idp-unavailable', { on: () => setHook({ mode: 'throw' }), off: () => setHook({ mode: 'accept', groups: ['Engines'] }) }, 5000);
  });
});
