import crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import jwt from 'jsonwebtoken';
import pino from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { FIXED_NOW_MS, openTestDatabase, storageFor, TEST_PREVIOUS_SECRET, TEST_SECRET, testConfig, type TestDatabase } from '../app.testkit.js';
import type { AuthConfig } from '../config.js';
import { createPool } from '../storage/db.js';
import { createSessionsRepo, type SessionsRepo } from '../storage/sessions-repo.js';
import type { UserRecord } from '../storage/users-repo.js';
import { NO_PAYLOAD_GROUPS, type GroupSelection } from './group-selection.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTableauFake, type TableauFake } from '../../../tests/support/tableau-fake.js';
import { loadCustomAuthenticator } from '../authenticators/custom.js';
import { createRenewalService, type RenewalResult, type RenewalService } from './renewal.js';
import { createSourceRecheck, type SourceRecheckDeps } from './source-recheck.js';
import { createServerSessions } from './server-sessions.js';
import { deriveKeyId, issueSessionToken, signSessionClaims } from './session-token.js';
import { sealTableauCredentials, openTableauCredentials, TABLEAU_TOKEN_CLAIM } from './tableau-token.js';

const T0 = FIXED_NOW_MS;
const IP = '192.0.2.7';
const TTL = 300;
const IDLE = 600;
const MAX = 3600;
const OTHER_SECRET = crypto.randomBytes(48).toString('base64url');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

let tdb: TestDatabase;
let clock = T0;
let selection: GroupSelection = { policyGroups: new Set(['Bridge', 'Engineering']), payload: NO_PAYLOAD_GROUPS };

/** Short tokens as the later step will configure them (the default TTL still equals SESSION_MAX_SECONDS). */
function configWith(env: Record<string, string> = {}): AuthConfig {
  const base = testConfig({ SESSION_MAX_SECONDS: String(MAX), SESSION_IDLE_SECONDS: String(IDLE), SESSION_IP_BINDING: 'exact', ...env });
  return { ...base, session: { ...base.session, ttlSeconds: TTL } };
}

function renewal(opts: { config?: AuthConfig; sessions?: SessionsRepo; ready?: boolean; sources?: Omit<SourceRecheckDeps, 'logger'> } = {}): RenewalService {
  const storage = storageFor(tdb.repo)!;
  return createRenewalService({
    config: opts.config ?? configWith(),
    sessions: opts.sessions ?? storage.sessions,
    usersRepo: tdb.repo,
    groupSelection: () => selection,
    logger: pino({ level: 'silent' }),
    now: () => clock,
    storeReady: () => opts.ready ?? true,
    recheckSource: opts.sources === undefined ? undefined : createSourceRecheck({ ...opts.sources, logger: pino({ level: 'silent' }) }),
  });
}

/** A sign-in as the login service makes it: token issued at `clock`, session row and event stored. */
async function signIn(user: Pick<UserRecord, 'id' | 'username' | 'groups'>, opts: { secret?: string; src?: string; extra?: Record<string, unknown> } = {}) {
  const storage = storageFor(tdb.repo)!;
  const issued = issueSessionToken({
    identity: { sub: user.id, username: user.username, groups: [...user.groups], src: opts.src ?? 'local', extraClaims: opts.extra },
    ip: IP,
    secret: opts.secret ?? TEST_SECRET,
    ttlSeconds: TTL,
    now: clock,
    groupSelection: selection,
  });
  const sessions = createServerSessions({ sessions: storage.sessions, audit: storage.audit, lifetimes: { maxSeconds: MAX, idleSeconds: IDLE }, logger: pino({ level: 'silent' }), now: () => clock, storeReady: () => true });
  await sessions.open(issued.claims, { clientIp: IP, userAgent: null, requestId: 'r-login', groups: user.groups });
  return issued;
}

async function eventsOf(sid: string): Promise<Array<{ event: string; reason: string | null }>> {
  const r = await tdb.pool.query<{ event: string; reason: string | null }>('SELECT event, reason FROM auth_events WHERE sid = $1 ORDER BY id', [sid]);
  return r.rows;
}

async function rowOf(sid: string) {
  return (await storageFor(tdb.repo)!.sessions.find(sid))!;
}

function renewed(result: RenewalResult): { token: string; claims: SessionClaims; header: Record<string, unknown> } {
  if (!result.ok) throw new Error(`refused: ${result.reason}`);
  const header = JSON.parse(Buffer.from(result.token.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  // Signed with the active key: it verifies with TEST_SECRET alone.
  const claims = jwt.verify(result.token, crypto.createSecretKey(Buffer.from(TEST_SECRET, 'utf8')), { algorithms: ['HS256'], ignoreExpiration: true }) as SessionClaims;
  return { token: result.token, claims, header };
}

let kirk: UserRecord;
let counter = 0;

beforeAll(async () => {
  tdb = await openTestDatabase();
});

afterAll(async () => {
  await tdb?.close();
});

beforeEach(async () => {
  clock = T0;
  selection = { policyGroups: new Set(['Bridge', 'Engineering']), payload: NO_PAYLOAD_GROUPS };
  counter += 1;
  kirk = await tdb.createUser(`kirk${counter}`, 'unused-password-123', { groups: ['Bridge', 'Federation'] });
});

describe('renewal: success', () => {
  test('renews a live token: same sid and iat, exp = now + TTL, active key, idle window moved, renewal event', async () => {
    const first = await signIn(kirk);
    clock = T0 + 120_000;
    const result = await renewal()({ token: first.token, clientIp: IP, requestId: 'r-renew' });
    const { claims, header } = renewed(result);
    expect(header.kid).toBe(deriveKeyId(TEST_SECRET));
    expect(claims).toMatchObject({ sid: first.claims.sid, iat: first.claims.iat, sub: kirk.id, username: kirk.username, ip: IP, src: 'local', groups: ['Bridge'] });
    expect(claims.exp).toBe(Math.floor(clock / 1000) + TTL);
    expect(result.ok && result.maxAgeSeconds).toBe(MAX - 120);
    const row = await rowOf(first.claims.sid);
    expect(iso(row.lastSeenAt.getTime())).toBe(iso(clock));
    expect(iso(row.idleExpiresAt.getTime())).toBe(iso(clock + IDLE * 1000));
    expect(await eventsOf(first.claims.sid)).toEqual([{ event: 'login_success', reason: null }, { event: 'renewal', reason: null }]);
  });

  test('renews an EXPIRED token while the session is live (the point of renewal)', async () => {
    const first = await signIn(kirk);
    clock = T0 + (TTL + 200) * 1000;
    const { claims } = renewed(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }));
    expect(claims.sid).toBe(first.claims.sid);
    expect(claims.exp).toBe(Math.floor(clock / 1000) + TTL);
  });

  test('never extends past the absolute expiry: exp is capped at created + SESSION_MAX_SECONDS', async () => {
    const first = await signIn(kirk);
    let token = first.token;
    for (let t = 500; t < MAX; t += 500) {
      clock = T0 + t * 1000;
      token = renewed(await renewal()({ token, clientIp: IP, requestId: 'r' })).token;
    }
    const last = jwt.decode(token) as SessionClaims;
    expect(last.exp).toBe(first.claims.iat + MAX);
    expect(last.iat).toBe(first.claims.iat);
    expect(iso((await rowOf(first.claims.sid)).idleExpiresAt.getTime())).toBe(iso((first.claims.iat + MAX) * 1000));
  });

  test('a token signed with a previous key still in its grace period is renewed under the active key', async () => {
    const config = configWith({ JWT_PREVIOUS_SECRETS: `${TEST_PREVIOUS_SECRET}@${iso(T0 + 86_400_000)}` });
    const first = await signIn(kirk, { secret: TEST_PREVIOUS_SECRET });
    const { header, claims } = renewed(await renewal({ config })({ token: first.token, clientIp: IP, requestId: 'r' }));
    expect(header.kid).toBe(deriveKeyId(TEST_SECRET));
    expect(claims.sid).toBe(first.claims.sid);
  });

  test('groups are read again from the user store and selected with the current selection', async () => {
    const first = await signIn(kirk);
    await tdb.repo.setGroups(kirk.username, ['Engineering', 'Federation', 'Bridge']);
    selection = { policyGroups: new Set(['Engineering']), payload: NO_PAYLOAD_GROUPS };
    const { claims } = renewed(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }));
    expect(claims.groups).toEqual(['Engineering']);
    expect(claims.groups_count).toBe(3);
    expect((await rowOf(first.claims.sid)).groups).toEqual(['Engineering', 'Federation', 'Bridge']);
  });

  test('without a source re-check (an OIDC session without a refresh token, a module without the hook) the groups stored at sign-in are kept', async () => {
    const first = await signIn({ id: 'oid-1', username: 'spock@example.org', groups: ['Engineering', 'Science'] }, { src: 'azure' });
    const { claims } = renewed(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }));
    expect(claims).toMatchObject({ src: 'azure', sub: 'oid-1', groups: ['Engineering'] });
  });

  test('a Tableau session within its token lifetime is renewed and its token sealed again under the active key', async () => {
    const config = configWith({ JWT_PREVIOUS_SECRETS: `${TEST_PREVIOUS_SECRET}@${iso(T0 + 86_400_000)}` });
    const creds = { token: 'tableau-credentials', siteId: 'site', userId: 'user', apiVersion: '3.19', expiresAt: Math.floor(T0 / 1000) + 240 * 60 };
    const first = await signIn({ id: 'tab-1', username: 'uhura', groups: [] }, { src: 'tableau', secret: TEST_PREVIOUS_SECRET, extra: { [TABLEAU_TOKEN_CLAIM]: sealTableauCredentials(creds, TEST_PREVIOUS_SECRET) } });
    const { claims } = renewed(await renewal({ config })({ token: first.token, clientIp: IP, requestId: 'r' }));
    expect(openTableauCredentials(claims[TABLEAU_TOKEN_CLAIM], [TEST_SECRET])).toEqual(creds);
  });

  test('two renewals of one sid at once both succeed (the row lock orders them)', async () => {
    const first = await signIn(kirk);
    clock = T0 + 60_000;
    const renew = renewal();
    const results = await Promise.all([renew({ token: first.token, clientIp: IP, requestId: 'a' }), renew({ token: first.token, clientIp: IP, requestId: 'b' })]);
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect((await eventsOf(first.claims.sid)).filter((e) => e.event === 'renewal')).toHaveLength(2);
  });

  test('SESSION_IP_BINDING=subnet renews from another address in the same /24; off from anywhere', async () => {
    const first = await signIn(kirk);
    expect((await renewal({ config: configWith({ SESSION_IP_BINDING: 'subnet' }) })({ token: first.token, clientIp: '192.0.2.99', requestId: 'r' })).ok).toBe(true);
    expect((await renewal({ config: configWith({ SESSION_IP_BINDING: 'off' }) })({ token: first.token, clientIp: '198.51.100.1', requestId: 'r' })).ok).toBe(true);
  });
});

describe('renewal: refusals', () => {
  const refusedWith = (result: RenewalResult) => (result.ok ? 'renewed' : `${result.status} ${result.reason}`);

  test('no cookie → token-missing', async () => {
    expect(refusedWith(await renewal()({ token: undefined, clientIp: IP, requestId: 'r' }))).toBe('401 token-missing');
  });

  test('a token signed with another key (forged) → token-invalid, nothing written', async () => {
    const first = await signIn(kirk);
    const forged = signSessionClaims({ ...first.claims, username: kirk.username }, OTHER_SECRET);
    expect(refusedWith(await renewal()({ token: forged, clientIp: IP, requestId: 'r' }))).toBe('401 token-invalid');
    expect(await eventsOf(first.claims.sid)).toEqual([{ event: 'login_success', reason: null }]);
  });

  test('a token signed with a RETIRED previous key → token-invalid', async () => {
    const config = configWith({ JWT_PREVIOUS_SECRETS: `${TEST_PREVIOUS_SECRET}@${iso(T0 + 60_000)}` });
    const first = await signIn(kirk, { secret: TEST_PREVIOUS_SECRET });
    clock = T0 + 61_000;
    expect(refusedWith(await renewal({ config })({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 token-invalid');
  });

  test('a token not valid yet (nbf) or issued in the future (iat) → token-invalid', async () => {
    const first = await signIn(kirk);
    const now = Math.floor(T0 / 1000);
    for (const claims of [{ ...first.claims, nbf: now + 600 }, { ...first.claims, iat: now + 600, exp: now + 900 }]) {
      expect(refusedWith(await renewal()({ token: signSessionClaims(claims, TEST_SECRET), clientIp: IP, requestId: 'r' }))).toBe('401 token-invalid');
    }
  });

  test('another address under SESSION_IP_BINDING=exact (and another /24 under subnet) → ip-mismatch, session kept', async () => {
    const first = await signIn(kirk);
    expect(refusedWith(await renewal()({ token: first.token, clientIp: '192.0.2.8', requestId: 'r' }))).toBe('401 ip-mismatch');
    expect(refusedWith(await renewal({ config: configWith({ SESSION_IP_BINDING: 'subnet' }) })({ token: first.token, clientIp: '192.0.3.7', requestId: 'r' }))).toBe('401 ip-mismatch');
    expect((await rowOf(first.claims.sid)).revokedAt).toBeNull();
    expect((await eventsOf(first.claims.sid)).at(-1)).toEqual({ event: 'renewal_refused', reason: 'ip-mismatch' });
  });

  test('a revoked session → session-ended, its first revoke reason kept', async () => {
    const first = await signIn(kirk);
    await storageFor(tdb.repo)!.sessions.revoke(first.claims.sid, { event: 'logout', reason: 'logout' });
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 session-ended');
    expect((await rowOf(first.claims.sid)).revokeReason).toBe('logout');
    expect((await eventsOf(first.claims.sid)).at(-1)).toEqual({ event: 'renewal_refused', reason: 'session-ended' });
  });

  test('a validly signed token whose session was never stored (or purged) → session-ended', async () => {
    const first = await signIn(kirk);
    const orphan = signSessionClaims({ ...first.claims, sid: 'never-stored-session-0001' }, TEST_SECRET);
    expect(refusedWith(await renewal()({ token: orphan, clientIp: IP, requestId: 'r' }))).toBe('401 session-ended');
  });

  test('unused longer than SESSION_IDLE_SECONDS → session-idle, and the session is ended', async () => {
    const first = await signIn(kirk);
    clock = T0 + (IDLE + 1) * 1000;
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 session-idle');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'session-idle' });
    expect((await eventsOf(first.claims.sid)).at(-1)).toEqual({ event: 'renewal_refused', reason: 'session-idle' });
    clock = T0;
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 session-ended');
  });

  test('past the absolute expiry, even when kept active → session-expired, and the session is ended', async () => {
    const first = await signIn(kirk);
    let token = first.token;
    for (let t = 500; t < MAX; t += 500) {
      clock = T0 + t * 1000;
      token = renewed(await renewal()({ token, clientIp: IP, requestId: 'r' })).token;
    }
    clock = T0 + MAX * 1000;
    expect(refusedWith(await renewal()({ token, clientIp: IP, requestId: 'r' }))).toBe('401 session-expired');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'session-expired' });
  });

  test('a disabled local user → user-disabled, and the session is ended', async () => {
    const first = await signIn(kirk);
    await tdb.repo.setDisabled(kirk.username, true);
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 user-disabled');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'user-disabled' });
    expect((await eventsOf(first.claims.sid)).at(-1)).toEqual({ event: 'renewal_refused', reason: 'user-disabled' });
  });

  test('a local user deleted and created again under the same name (another id) → user-disabled', async () => {
    const first = await signIn(kirk);
    await tdb.pool.query('DELETE FROM users WHERE id = $1', [kirk.id]);
    await tdb.createUser(kirk.username, 'unused-password-123');
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 user-disabled');
  });

  test('a Tableau session whose Tableau token has expired → tableau-session-expired, and the session is ended', async () => {
    const creds = { token: 'tableau-credentials', siteId: 'site', userId: 'user', apiVersion: '3.19', expiresAt: Math.floor(T0 / 1000) + 60 };
    const first = await signIn({ id: 'tab-2', username: `sulu${counter}`, groups: [] }, { src: 'tableau', extra: { [TABLEAU_TOKEN_CLAIM]: sealTableauCredentials(creds, TEST_SECRET) } });
    clock = T0 + 120_000;
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 tableau-session-expired');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'tableau-session-expired' });
  });

  test('a store that cannot be reached → 503 store-unavailable (fail closed, no token, no throw)', async () => {
    const first = await signIn(kirk);
    const deadPool = createPool('postgres://postgres@127.0.0.1:1/none', { max: 1, connectionTimeoutMillis: 500 });
    try {
      expect(refusedWith(await renewal({ sessions: createSessionsRepo(deadPool) })({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('503 store-unavailable');
    } finally {
      await deadPool.end();
    }
  });

  test('groups the current policy names that no longer fit in a token → session-too-large, and the session is ended', async () => {
    const many = Array.from({ length: 200 }, (_, i) => `Department of Very Long Group Names ${i}`);
    const first = await signIn(kirk);
    await tdb.repo.setGroups(kirk.username, many);
    selection = { policyGroups: new Set(many), payload: NO_PAYLOAD_GROUPS };
    expect(refusedWith(await renewal()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 session-too-large');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'session-too-large' });
  });

  test('a compiled policy that cannot be read → 503 policy-unavailable, no token, the session kept', async () => {
    const first = await signIn(kirk);
    const service = createRenewalService({
      config: configWith(),
      sessions: storageFor(tdb.repo)!.sessions,
      usersRepo: tdb.repo,
      groupSelection: () => {
        throw new Error('cannot read the compiled access policy /nowhere/policy.json');
      },
      logger: pino({ level: 'silent' }),
      now: () => clock,
      storeReady: () => true,
    });
    expect(refusedWith(await service({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('503 policy-unavailable');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokedAt: null });
  });

  test('a store that is not migrated yet → 503 store-unavailable', async () => {
    const first = await signIn(kirk);
    expect(refusedWith(await renewal({ ready: false })({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('503 store-unavailable');
  });
});

describe('renewal asks the session\'s source (Tableau fake, a real custom module)', () => {
  let tableau: TableauFake;
  let dir: string;
  const refusal = (result: RenewalResult) => (result.ok ? 'renewed' : `${result.status} ${result.reason}`);

  beforeAll(async () => {
    tableau = await startTableauFake({ users: [{ name: 'uhura', password: 'tableau pw 1', siteRole: 'Viewer', groups: [] }] });
    dir = mkdtempSync(path.join(tmpdir(), 'renewal-hook-'));
  });
  afterAll(async () => {
    await tableau?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A real Tableau token from the fake, sealed into a Tableau session as a sign-in does. */
  async function tableauSession(expiresInSeconds = 240 * 60) {
    tableau.setFault('none');
    const res = await fetch(`${tableau.url}/api/3.19/auth/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ credentials: { name: 'uhura', password: 'tableau pw 1', site: { contentUrl: '' } } }),
    });
    const { credentials } = (await res.json()) as { credentials: { token: string; site: { id: string }; user: { id: string } } };
    const creds = { token: credentials.token, siteId: credentials.site.id, userId: credentials.user.id, apiVersion: '3.19', expiresAt: Math.floor(clock / 1000) + expiresInSeconds };
    return signIn({ id: creds.userId, username: `uhura${counter}`, groups: ['Bridge'] }, { src: 'tableau', extra: { [TABLEAU_TOKEN_CLAIM]: sealTableauCredentials(creds, TEST_SECRET) } });
  }
  const withTableau = () => renewal({ sources: { tableau: { url: tableau.url, timeoutMs: 500 } } });
  const sessionCalls = () => tableau.requests.filter((r) => r.url.endsWith('/sessions/current')).length;

  test('Tableau still accepts the token → renewed, after one Get Current Server Session', async () => {
    const first = await tableauSession();
    const before = sessionCalls();
    expect(renewed(await withTableau()({ token: first.token, clientIp: IP, requestId: 'r' })).claims.sid).toBe(first.claims.sid);
    expect(sessionCalls()).toBe(before + 1);
  });

  test('Tableau answers 401 (token expired or signed out there) → tableau-session-expired, the session ended', async () => {
    const first = await tableauSession();
    tableau.expireAllTokens();
    expect(refusal(await withTableau()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 tableau-session-expired');
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'tableau-session-expired' });
  });

  test.each([['sessions-down'], ['500'], ['slow']] as const)('Tableau %s → 503 tableau-unavailable, nothing written, the session kept', async (fault) => {
    const first = await tableauSession();
    tableau.setFault(fault);
    try {
      expect(refusal(await withTableau()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('503 tableau-unavailable');
    } finally {
      tableau.setFault('none');
    }
    expect(await rowOf(first.claims.sid)).toMatchObject({ revokedAt: null });
    expect(await eventsOf(first.claims.sid)).toEqual([{ event: 'login_success', reason: null }]);
  });

  test('a session the row already refuses (revoked) or whose Tableau token is past its lifetime never reaches Tableau', async () => {
    const revoked = await tableauSession();
    await storageFor(tdb.repo)!.sessions.revoke(revoked.claims.sid, { event: 'logout', reason: 'logout' });
    const stale = await tableauSession(60);
    const before = sessionCalls();
    expect(refusal(await withTableau()({ token: revoked.token, clientIp: IP, requestId: 'r' }))).toBe('401 session-ended');
    clock += 120_000;
    expect(refusal(await withTableau()({ token: stale.token, clientIp: IP, requestId: 'r' }))).toBe('401 tableau-session-expired');
    expect(sessionCalls()).toBe(before);
  });

  describe('custom module refresh hook', () => {
    const stateFile = () => path.join(dir, 'hook.json');
    let hooked: Awaited<ReturnType<typeof loadCustomAuthenticator>>;
    beforeAll(async () => {
      const file = path.join(dir, 'hooked.mjs');
      writeFileSync(
        file,
        `import { readFileSync } from 'node:fs';
export default {
  id: 'hooked',
  async authenticate() { return { kind: 'invalid' }; },
  async refresh(identity) {
    const s = JSON.parse(readFileSync(${JSON.stringify(stateFile())}, 'utf8'));
    if (s.mode === 'throw') throw new Error('directory down');
    if (s.mode === 'refuse') return { kind: 'refused' };
    return { kind: 'success', identity: { ...identity, groups: s.groups } };
  },
};
`,
      );
      hooked = await loadCustomAuthenticator(file, { timeoutMs: 500 });
    });
    const hook = (state: object) => writeFileSync(stateFile(), JSON.stringify(state));
    const customSession = () => signIn({ id: 'ada-1', username: `ada${counter}`, groups: ['Bridge'] }, { src: 'custom:hooked' });
    const withHook = () => renewal({ sources: { authenticators: [hooked] } });

    test('accepts → the groups it names are applied and stored', async () => {
      const first = await customSession();
      hook({ mode: 'accept', groups: ['Engineering', 'Science'] });
      expect(renewed(await withHook()({ token: first.token, clientIp: IP, requestId: 'r' })).claims.groups).toEqual(['Engineering']);
      expect((await rowOf(first.claims.sid)).groups).toEqual(['Engineering', 'Science']);
    });

    test('refuses → custom-refresh-refused, the session ended', async () => {
      const first = await customSession();
      hook({ mode: 'refuse' });
      expect(refusal(await withHook()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('401 custom-refresh-refused');
      expect(await rowOf(first.claims.sid)).toMatchObject({ revokeReason: 'custom-refresh-refused' });
    });

    test('throws → 503 idp-unavailable, the session kept', async () => {
      const first = await customSession();
      hook({ mode: 'throw' });
      expect(refusal(await withHook()({ token: first.token, clientIp: IP, requestId: 'r' }))).toBe('503 idp-unavailable');
      expect(await rowOf(first.claims.sid)).toMatchObject({ revokedAt: null, groups: ['Bridge'] });
    });
  });
});
