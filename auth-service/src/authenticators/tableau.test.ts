import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startTableauFake, type TableauFake } from '../../../tests/support/tableau-fake.js';
import { AppError } from '../errors.js';
import { compareApiVersions, createTableauAuthenticator, IDP_UNAVAILABLE_MESSAGE, type TableauAuthenticatorOptions } from './tableau.js';

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

  test('refuses a server older than REST API 3.7 (no Get Groups for a User)', async () => {
    const old = await startTableauFake({ users: [], restApiVersion: '3.6' });
    try {
      const auth = createTableauAuthenticator({ url: old.url, site: '', timeoutMs: 2000, logger });
      await unavailable(auth.authenticate({ username: 'bob', password: 'x' }, ctx));
      expect(old.signIns()).toEqual([]);
    } finally {
      await old.close();
    }
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
