import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startTableauFake, type TableauFake } from '../../../tests/support/tableau-fake.js';
import { AppError } from '../errors.js';
import { compareApiVersions, createTableauAuthenticator, IDP_MISCONFIGURED_MESSAGE, IDP_UNAVAILABLE_MESSAGE, type TableauAuthenticatorOptions } from './tableau.js';

const SITE = { contentUrl: 'finance', id: '9a8b7c6d-0000-4000-8000-00000000f00d' };
const ctx = { requestId: 'req-tableau-1' };
const FIVE_GROUPS = ['All Users', 'Analysts', 'Finance', 'Leads', 'Auditors'];

let fake: TableauFake;
const lines: string[] = [];
const logger = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  }),
);

beforeAll(async () => {
  fake = await startTableauFake({
    site: SITE,
    restApiVersion: '3.21',
    users: [
      { name: 'ada', password: 'tableau pass 1', fullName: 'Ada Lovelace', email: 'ada@example.com', siteRole: 'Creator', groups: FIVE_GROUPS },
      { name: 'bob', password: 'tableau pass 2', siteRole: 'Viewer', groups: [] },
    ],
  });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.setFault('none');
  fake.requests.length = 0;
  lines.length = 0;
});

function authenticator(overrides: Partial<TableauAuthenticatorOptions> = {}) {
  return createTableauAuthenticator({ url: fake.url, site: SITE.contentUrl, apiVersion: '3.19', timeoutMs: 2000, logger, ...overrides });
}

async function unavailable(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => {
      throw new Error('expected ERR_IDP_UNAVAILABLE');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ code: 'ERR_IDP_UNAVAILABLE', status: 503, safeMessage: IDP_UNAVAILABLE_MESSAGE });
  return err as AppError;
}

async function misconfigured(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => {
      throw new Error('expected ERR_IDP_MISCONFIGURED');
    },
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'ERR_IDP_MISCONFIGURED', status: 503, safeMessage: IDP_MISCONFIGURED_MESSAGE });
  return err as AppError;
}

/** The `tableau_setup_required` reasons logged so far. */
function setupReasons(): string[] {
  return lines.map((l) => JSON.parse(l) as { event?: string; reason?: string }).filter((l) => l.event === 'tableau_setup_required').map((l) => String(l.reason));
}

describe('Tableau sign-in', () => {
  test('a right password gives the Tableau identity: ids in sub, site role and ids as extra claims, all groups over 3 pages', async () => {
    const outcome = await authenticator({ pageSize: 2 }).authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx);
    expect(outcome.kind).toBe('success');
    if (outcome.kind !== 'success') return;
    const userId = String(outcome.identity.extraClaims?.tableau_user_id);
    expect(outcome.identity).toEqual({
      sub: `tableau:${SITE.id}:${userId}`,
      username: 'ada',
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      // Tableau's e-mail is set by administrators, not by the user: it is vouched for.
      emailVerified: true,
      groups: FIVE_GROUPS,
      src: 'tableau',
      extraClaims: { tableau_site_id: SITE.id, tableau_user_id: userId, tableau_site_role: 'Creator' },
    });
    expect(userId).toMatch(/^[0-9a-f-]{36}$/);
    const groupPages = fake.requests.filter((r) => r.url.includes('/groups?'));
    expect(groupPages.map((r) => new URL(r.url, 'http://x').searchParams.get('pageNumber'))).toEqual(['1', '2', '3']);
  });

  test('with sealCredentials, keeps the Tableau session and seals its token into the tta claim instead of signing out', async () => {
    const sealed: unknown[] = [];
    const outcome = await authenticator({
      now: () => 1_800_000_000_000,
      sealCredentials: (creds) => {
        sealed.push(creds);
        return 'sealed-value';
      },
    }).authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx);
    expect(outcome.kind).toBe('success');
    if (outcome.kind !== 'success') return;
    expect(outcome.identity.extraClaims?.tta).toBe('sealed-value');
    expect(sealed).toEqual([
      { token: fake.issuedTokens().at(-1), siteId: SITE.id, userId: outcome.identity.extraClaims?.tableau_user_id, apiVersion: '3.19', expiresAt: 1_800_000_000 + 240 * 60 },
    ]);
    expect(fake.requests.some((r) => r.url.endsWith('/auth/signout'))).toBe(false);
    expect(fake.liveTokens()).toBe(1);
    // The session would be signed out at logout; end it here so later tests start clean.
    fake.expireAllTokens();
  });

  test('keys sub by the ids, never by the (renamable) name', async () => {
    const outcome = await authenticator().authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx);
    expect(outcome).toMatchObject({ kind: 'success', identity: { username: 'bob', groups: [], extraClaims: { tableau_site_role: 'Viewer' } } });
    if (outcome.kind !== 'success') return;
    expect(outcome.identity.sub).not.toContain('bob');
    expect(outcome.identity.sub).toMatch(new RegExp(`^tableau:${SITE.id}:[0-9a-f-]{36}$`));
    expect(outcome.identity).not.toHaveProperty('name');
    expect(outcome.identity).not.toHaveProperty('email');
    expect(outcome.identity).not.toHaveProperty('emailVerified');
  });

  test('signs in with a JSON body and Accept: application/json, sends the token only in X-Tableau-Auth, and signs out', async () => {
    await authenticator().authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx);
    const [signIn, ...rest] = fake.requests;
    expect(signIn).toMatchObject({ method: 'POST', url: '/api/3.19/auth/signin', headers: { 'content-type': 'application/json', accept: 'application/json' } });
    expect(rest.every((r) => typeof r.headers['x-tableau-auth'] === 'string')).toBe(true);
    expect(rest.at(-1)).toMatchObject({ method: 'POST', url: '/api/3.19/auth/signout' });
    expect(fake.liveTokens()).toBe(0);
  });

  test.each([
    ['a wrong password', 'ada', 'wrong password'],
    ['an unknown user (Tableau answers it like a wrong password)', 'nobody', 'tableau pass 1'],
  ])('%s is invalid, with Tableau code 401001 logged and the password never logged', async (_case, username, password) => {
    const outcome = await authenticator().authenticate({ username, password }, ctx);
    expect(outcome).toEqual({ kind: 'invalid' });
    const log = lines.join('');
    expect(log).toContain('"tableau_code":"401001"');
    expect(log).not.toContain(password);
  });

  test('a site the user is not on is invalid', async () => {
    const outcome = await authenticator({ site: 'other-site' }).authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx);
    expect(outcome).toEqual({ kind: 'invalid' });
  });
});

describe('no Tableau session is left alive once Tableau accepted the password', () => {
  const sealing = { sealCredentials: () => 'sealed-value' } as const;

  test.each([
    ['groups-500', 'Get Groups for a User fails'],
    ['user-malformed', 'Query User On Site answers a user without a name'],
    ['signin-malformed', 'the sign-in answers a token but no user id'],
  ] as const)('%s (%s): 503, and the token is signed out at Tableau', async (fault, _what) => {
    fake.setFault(fault);
    await unavailable(authenticator(sealing).authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx));
    const token = fake.issuedTokens().at(-1)!;
    expect(fake.signedOutTokens()).toContain(token);
    expect(fake.isLive(token)).toBe(false);
  });

  test('sealing the token fails: the token is signed out and the error propagates', async () => {
    const broken = authenticator({
      sealCredentials: () => {
        throw new Error('seal failed');
      },
    });
    await expect(broken.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx)).rejects.toThrow('seal failed');
    expect(fake.isLive(fake.issuedTokens().at(-1)!)).toBe(false);
  });

  test('a kept session is signed out by the outcome\'s discard (the session cookie was not issued after all)', async () => {
    const outcome = await authenticator(sealing).authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx);
    if (outcome.kind !== 'success' || outcome.discard === undefined) throw new Error('expected a success with discard');
    const token = fake.issuedTokens().at(-1)!;
    expect(fake.isLive(token)).toBe(true);
    await outcome.discard();
    expect(fake.signedOutTokens()).toContain(token);
    expect(fake.isLive(token)).toBe(false);
  });
});

describe('realistic sizes', () => {
  test('a user in 1,000 groups with long non-ASCII names: every page is read, names intact and in order', async () => {
    const groups = Array.from({ length: 1000 }, (_, i) => `Überregionale Ärzte-Fachgruppe Zürich–東京–Ωmega & <Partner> "${i}" ${'ä'.repeat(40)}`);
    const big = await startTableauFake({ site: SITE, users: [{ name: 'gus', password: 'tableau pass 3', siteRole: 'Viewer', groups }] });
    try {
      const auth = createTableauAuthenticator({ url: big.url, site: SITE.contentUrl, apiVersion: '3.19', timeoutMs: 5000, logger, pageSize: 100 });
      const outcome = await auth.authenticate({ username: 'gus', password: 'tableau pass 3' }, ctx);
      expect(outcome).toMatchObject({ kind: 'success' });
      if (outcome.kind !== 'success') return;
      expect(outcome.identity.groups).toEqual(groups);
      const pages = big.requests.filter((r) => r.url.includes('/groups?')).map((r) => new URL(r.url, 'http://x').searchParams.get('pageNumber'));
      expect(pages).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));
    } finally {
      await big.close();
    }
  });
});

describe('Tableau unavailable', () => {
  test('a Tableau slower than the timeout gives 503 within the timeout', async () => {
    fake.setFault('slow');
    const started = Date.now();
    await unavailable(authenticator({ timeoutMs: 300 }).authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(lines.join('')).toContain('no answer within 300 ms');
  });

  test.each([
    ['drops the connection', 'down' as const],
    ['answers 500', '500' as const],
  ])('a Tableau that %s gives 503', async (_case, fault) => {
    fake.setFault(fault);
    await unavailable(authenticator().authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx));
  });

  test('a Tableau nobody listens on gives 503', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    await unavailable(authenticator({ url: `http://127.0.0.1:${port}` }).authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx));
  });

  test('a token Tableau refuses right after sign-in gives 503 (not a silent login without details)', async () => {
    // Sign-in itself needs no token, so the fault only bites on the user query.
    fake.setFault('expired-token');
    const err = await unavailable(authenticator().authenticate({ username: 'ada', password: 'tableau pass 1' }, ctx));
    expect(String((err.cause as Error).message)).toContain('401002');
  });
});

describe('Tableau REST API version', () => {
  test('is read once from serverinfo (API 2.4) when not configured, then used for every call', async () => {
    const auth = authenticator({ apiVersion: undefined });
    await auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx);
    await auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx);
    const serverinfo = fake.requests.filter((r) => r.url.endsWith('/serverinfo'));
    expect(serverinfo.map((r) => r.url)).toEqual(['/api/2.4/serverinfo']);
    expect(fake.signIns().map((r) => r.apiVersion)).toEqual(['3.21', '3.21']);
  });

  test('a failed detection is not cached: the next sign-in asks again', async () => {
    const auth = authenticator({ apiVersion: undefined });
    fake.setFault('500');
    await unavailable(auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx));
    fake.setFault('none');
    await expect(auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx)).resolves.toMatchObject({ kind: 'success' });
  });

  test('refuses a server older than REST API 3.7 (no Get Groups for a User) as a setup problem that names the upgrade, not as "not reachable"', async () => {
    const old = await startTableauFake({ users: [], restApiVersion: '3.6' });
    try {
      const auth = createTableauAuthenticator({ url: old.url, site: '', timeoutMs: 2000, logger });
      await misconfigured(auth.authenticate({ username: 'bob', password: 'x' }, ctx));
      expect(old.signIns()).toEqual([]);
      expect(setupReasons().at(-1)).toMatch(/speaks REST API 3\.6, but 3\.7 \(Tableau Server 2020\.1\) or newer is needed.*upgrade Tableau Server/);
    } finally {
      await old.close();
    }
  });

  test('a server that refuses the 2.x serverinfo probe is asked again at 3.7 and used at the version it reports', async () => {
    const modern = await startTableauFake({ site: SITE, users: [{ name: 'bob', password: 'tableau pass 2', siteRole: 'Viewer', groups: [] }], oldestApiVersion: '3.0', restApiVersion: '3.24' });
    try {
      const auth = createTableauAuthenticator({ url: modern.url, site: SITE.contentUrl, timeoutMs: 2000, logger });
      await expect(auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx)).resolves.toMatchObject({ kind: 'success' });
      const probes = modern.requests.filter((r) => r.url.endsWith('/serverinfo'));
      expect(probes.map((r) => r.apiVersion)).toEqual(['2.4', '3.7']);
      expect(modern.signIns().map((r) => r.apiVersion)).toEqual(['3.24']);
    } finally {
      await modern.close();
    }
  });

  test('a server that refuses 2.x and is older than 3.7 is a setup problem that says what to do', async () => {
    const old = await startTableauFake({ users: [], oldestApiVersion: '3.0', restApiVersion: '3.6' });
    try {
      const auth = createTableauAuthenticator({ url: old.url, site: '', timeoutMs: 2000, logger });
      await misconfigured(auth.authenticate({ username: 'bob', password: 'x' }, ctx));
      expect(setupReasons().at(-1)).toMatch(/refused serverinfo at REST API 2\.4 and 3\.7 \(404 \(Tableau error 404001\)\).*upgrade to Tableau Server 2020\.1.*TABLEAU_API_VERSION/);
      expect(old.signIns()).toEqual([]);
    } finally {
      await old.close();
    }
  });

  test('a TABLEAU_API_VERSION the server does not speak is a setup problem naming the variable, not "invalid password"', async () => {
    const older = await startTableauFake({ site: SITE, users: [{ name: 'bob', password: 'tableau pass 2', siteRole: 'Viewer', groups: [] }], restApiVersion: '3.10' });
    try {
      const auth = createTableauAuthenticator({ url: older.url, site: SITE.contentUrl, apiVersion: '3.19', timeoutMs: 2000, logger });
      await misconfigured(auth.authenticate({ username: 'bob', password: 'tableau pass 2' }, ctx));
      expect(setupReasons().at(-1)).toMatch(/TABLEAU_API_VERSION=3\.19 is not a version this server speaks/);
      // And at start-up, before anyone signs in:
      await expect(auth.checkServer()).resolves.toBe(false);
      expect(setupReasons().at(-1)).toMatch(/Tableau refused REST API 3\.19 \(serverinfo answered 404 \(Tableau error 404001\)\): TABLEAU_API_VERSION=3\.19/);
    } finally {
      await older.close();
    }
  });

  test('checkServer logs tableau_ready with the version in use, and tableau_unavailable (not a setup problem) when Tableau is down', async () => {
    await expect(authenticator({ apiVersion: undefined }).checkServer()).resolves.toBe(true);
    expect(lines.join('')).toMatch(/"event":"tableau_ready".*"api_version":"3.21"/);
    fake.setFault('down');
    await expect(authenticator({ apiVersion: undefined }).checkServer()).resolves.toBe(false);
    expect(lines.at(-1)).toContain('"event":"tableau_unavailable"');
    expect(setupReasons()).toEqual([]);
  });

  test.each([
    ['3.19', '3.7', 1],
    ['3.7', '3.19', -1],
    ['3.7', '3.7', 0],
    ['2.8', '3.0', -1],
  ])('compares %s with %s numerically', (a, b, sign) => {
    expect(Math.sign(compareApiVersions(a, b))).toBe(sign);
  });
});

describe('the Tableau fake', () => {
  test('answers Get Current Server Session in XML for a live token and 401002 once it is signed out', async () => {
    const signIn = await fetch(`${fake.url}/api/3.19/auth/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ credentials: { name: 'ada', password: 'tableau pass 1', site: { contentUrl: 'finance' } } }),
    });
    const { credentials } = (await signIn.json()) as { credentials: { token: string; user: { id: string } } };
    const live = await fetch(`${fake.url}/api/3.19/sessions/current`, { headers: { 'x-tableau-auth': credentials.token } });
    expect(live.status).toBe(200);
    expect(await live.text()).toMatch(new RegExp(`<session><site id="${SITE.id}" name="finance" contentUrl="finance"/><user id="${credentials.user.id}" name="ada" siteRole="Creator" lastLogin="[0-9T:-]+Z"/></session>`));
    await fetch(`${fake.url}/api/3.19/auth/signout`, { method: 'POST', headers: { 'x-tableau-auth': credentials.token } });
    const dead = await fetch(`${fake.url}/api/3.19/sessions/current`, { headers: { 'x-tableau-auth': credentials.token, accept: 'application/json' } });
    expect(dead.status).toBe(401);
    expect(await dead.json()).toMatchObject({ error: { code: '401002' } });
  });

  test('refuses a version newer than it speaks with 404001, as Tableau does', async () => {
    const res = await fetch(`${fake.url}/api/3.99/serverinfo`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: '404001', detail: "Version '3.99' is not a valid version of the API." } });
  });

  test('accepts an XML sign-in and answers in XML without Accept: application/json', async () => {
    const res = await fetch(`${fake.url}/api/3.19/auth/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: `<tsRequest><credentials name="ada" password="tableau pass 1"><site contentUrl="finance"/></credentials></tsRequest>`,
    });
    expect(res.status).toBe(200);
    const xml = await res.text();
    expect(xml).toMatch(/<credentials token="[^"]+"><site id="9a8b7c6d-0000-4000-8000-00000000f00d" contentUrl="finance"\/><user id="[0-9a-f-]{36}"\/><\/credentials>/);
  });

  test('answers a bad XML sign-in with the XML error format and code 401001', async () => {
    const res = await fetch(`${fake.url}/api/3.19/auth/signin`, {
      method: 'POST',
      headers: { 'content-type': 'application/xml' },
      body: `<tsRequest><credentials name="ada" password="nope"><site contentUrl="finance"/></credentials></tsRequest>`,
    });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('<error code="401001"><summary>Signin Error</summary>');
  });

  test('refuses a user query without a token (401000)', async () => {
    const res = await fetch(`${fake.url}/api/3.19/sites/${SITE.id}/users/x`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: '401000' } });
  });
});
