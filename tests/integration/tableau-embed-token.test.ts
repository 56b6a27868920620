/**
 * Tableau Connected Apps through the real nginx: GET /auth/tableau/embed-token answers, for the
 * signed-in user, a JWT that the Tableau fake accepts exactly as Tableau documents it, and every
 * other JWT (forged, another secret, unknown app or secret, expired, replayed, wrong audience or
 * scope, unknown user) is refused with Tableau's error code.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { accessLogEntry, stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const APP = { clientId: '7a1e0c51-1111-4b4b-9c9c-0123456789ab', secret: { id: 'c3d4e5f6-2222-4c4c-8d8d-0123456789cd', value: randomBytes(32).toString('base64') } };
const PASSWORD = 'local user password 42';

/** A JWT signed like the gateway's, with `edit` applied to its header and claims first. */
function resign(token: string, secret: string, edit: (header: Record<string, unknown>, claims: Record<string, unknown>) => void): string {
  const [h, p] = token.split('.') as [string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  edit(header, claims);
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('Tableau Connected App tokens through nginx', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    tableau = await startTableauFake({
      users: [{ name: 'tina', password: 'unused tableau password 1', siteRole: 'Viewer', groups: [] }],
      connectedApp: { clientId: APP.clientId, secrets: [APP.secret] },
    });
    stack = await startStack({
      env: {
        TABLEAU_CONNECTED_APP_CLIENT_ID: APP.clientId,
        TABLEAU_CONNECTED_APP_SECRET_ID: APP.secret.id,
        TABLEAU_CONNECTED_APP_SECRET_VALUE: APP.secret.value,
        TABLEAU_CONNECTED_APP_TOKEN_TTL_SECONDS: '120',
        TABLEAU_CONNECTED_APP_USER_ATTRIBUTES: 'groups',
        PAYLOAD_GROUPS: 'Sales',
      },
    });
    await stack.createUser('tina', PASSWORD, { groups: ['Sales'] });
    await stack.createUser('larry', PASSWORD);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  async function tokenFor(user: string): Promise<string> {
    const { session } = await stack.login(user, PASSWORD);
    const res = await stack.request('GET', '/auth/tableau/embed-token', { cookie: String(session), 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    return (JSON.parse(res.body) as { token: string }).token;
  }

  test('the signed-in user gets a token Tableau accepts once, for that user, and nginx logs no token', async () => {
    const token = await tokenFor('tina');
    // The session's groups travel as a Tableau user attribute (TABLEAU_CONNECTED_APP_USER_ATTRIBUTES=groups).
    expect(tableau.verifyConnectedAppToken(token)).toMatchObject({ ok: true, username: 'tina', scopes: ['tableau:views:embed'], claims: { groups: ['Sales'] } });
    // The same JWT a second time: Tableau refuses a replayed jti.
    expect(tableau.verifyConnectedAppToken(token)).toMatchObject({ ok: false, code: '16', detail: expect.stringMatching(/already been used/) });
    const entry = await accessLogEntry(stack.nginx, (e) => e.uri === '/auth/tableau/embed-token' || String(e.request ?? '').includes('/auth/tableau/embed-token'));
    expect(entry).toBeDefined();
    expect(stack.nginx.accessLog()).not.toContain(token.split('.')[2]);
    expect(stack.authLogs()).not.toContain(token.split('.')[2]);
    expect(stack.authLogs()).not.toContain(APP.secret.value);
  });

  test('refuses, before any session is looked at, a request without X-Requested-With or from another site', async () => {
    const { session } = await stack.login('tina', PASSWORD);
    const plain = await stack.request('GET', '/auth/tableau/embed-token', { cookie: String(session) });
    expect(plain.status).toBe(403);
    expect(JSON.parse(plain.body)).toEqual({ error: 'forbidden', reason: 'header-missing' });
    const crossSite = await stack.request('GET', '/auth/tableau/embed-token', { cookie: String(session), 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body)).toEqual({ error: 'forbidden', reason: 'cross-site' });
  });

  test('answers 401 JSON without a session (the route is reachable, but only with the cookie)', async () => {
    const res = await stack.request('GET', '/auth/tableau/embed-token', { 'x-requested-with': 'XMLHttpRequest' });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated' });
    expect(stack.upstream.seen.some((r) => r.url.startsWith('/auth/'))).toBe(false);
  });

  test('a gateway user who is not on the Tableau site: Tableau answers 5 SYSTEM_USER_NOT_FOUND', async () => {
    expect(tableau.verifyConnectedAppToken(await tokenFor('larry'))).toMatchObject({ ok: false, code: '5', summary: 'SYSTEM_USER_NOT_FOUND' });
  });

  const forgeries: Array<[string, (token: string) => string, string, RegExp]> = [
    ['signed with another secret (a forgery)', (t: string) => resign(t, randomBytes(32).toString('base64'), () => undefined), '16', /signature/],
    ['with a flipped signature character', (t: string) => t.slice(0, -2) + (t.at(-2) === 'A' ? 'B' : 'A') + t.at(-1), '16', /signature/],
    ['naming another connected app', (t: string) => resign(t, APP.secret.value, (h, c) => { h.iss = 'other-app'; c.iss = 'other-app'; }), '126', /CONNECTED_APP_NOT_FOUND/],
    ['naming an unknown secret id', (t: string) => resign(t, APP.secret.value, (h) => { h.kid = 'retired-secret'; }), '127', /CONNECTED_APP_SECRET_NOT_FOUND/],
    ['without kid in the header', (t: string) => resign(t, APP.secret.value, (h) => { delete h.kid; }), '10083', /BAD_JWT/],
    ['with alg none', (t: string) => resign(t, APP.secret.value, (h) => { h.alg = 'none'; }), '10083', /BAD_JWT/],
    ['for another audience', (t: string) => resign(t, APP.secret.value, (_h, c) => { c.aud = 'tableau-other'; }), '16', /aud/],
    ['with scp as a string, not a list', (t: string) => resign(t, APP.secret.value, (_h, c) => { c.scp = 'tableau:views:embed'; }), '10084', /JWT_PARSE_ERROR/],
    ['without an embedding scope', (t: string) => resign(t, APP.secret.value, (_h, c) => { c.scp = ['tableau:content:read']; }), '16', /scope/],
    ['valid for more than 10 minutes', (t: string) => resign(t, APP.secret.value, (_h, c) => { c.exp = Math.floor(Date.now() / 1000) + 3600; }), '10096', /EXCEEDS/],
    ['for a user on no site', (t: string) => resign(t, APP.secret.value, (_h, c) => { c.sub = 'TINA'; }), '5', /SYSTEM_USER_NOT_FOUND/],
    ['not a JWT', () => 'not.a.jwt!', '10084', /JWT_PARSE_ERROR/],
  ];
  for (const [name, tamper, code, text] of forgeries) {
    test(`the fake refuses a token ${name}`, async () => {
      const verdict = tableau.verifyConnectedAppToken(tamper(await tokenFor('tina')));
      expect(verdict).toMatchObject({ ok: false, code });
      expect(JSON.stringify(verdict)).toMatch(text);
    });
  }

  test('the fake refuses an expired token (its clock 121 s on, past the 120 s TTL)', async () => {
    const token = await tokenFor('tina');
    tableau.setClockOffset(121);
    try {
      expect(tableau.verifyConnectedAppToken(token)).toMatchObject({ ok: false, code: '16', detail: expect.stringMatching(/expired/) });
    } finally {
      tableau.setClockOffset(0);
    }
    expect(tableau.verifyConnectedAppToken(token)).toMatchObject({ ok: true });
  });
});
