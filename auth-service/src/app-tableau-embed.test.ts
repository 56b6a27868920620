/**
 * GET /auth/tableau/embed-token over real HTTP against a real PostgreSQL store: the Tableau
 * Connected App JWT for the signed-in user, refused to cross-site callers, without a session,
 * beyond the per-session rate limit, and never logged.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import jwt from 'jsonwebtoken';
import { appsOnTestDatabase, FIXED_NOW_MS, setCookies, type TestApp } from './app.testkit.js';
import { createMetrics } from './metrics.js';
import { TABLEAU_EMBED_TOKEN_RATE_LIMIT } from './routes/tableau-embed.js';

const SECRET = randomBytes(32).toString('base64');
const CLIENT_ID = '7a1e0c51-1111-4b4b-9c9c-0123456789ab';
const SECRET_ID = 'c3d4e5f6-2222-4c4c-8d8d-0123456789cd';
const CONNECTED_APP = { TABLEAU_CONNECTED_APP_CLIENT_ID: CLIENT_ID, TABLEAU_CONNECTED_APP_SECRET_ID: SECRET_ID, TABLEAU_CONNECTED_APP_SECRET_VALUE: SECRET };
const PATH = '/auth/tableau/embed-token';

const apps = appsOnTestDatabase(async (db) => {
  await db.createUser('tina', 'correct horse battery', { email: 'tina@example.com' });
  await db.createUser('larry', 'correct horse battery');
});

async function sessionOf(app: TestApp, user: string): Promise<string> {
  const res = await app.login(user, 'correct horse battery');
  return setCookies(res)
    .find((c) => c.startsWith('gw_session='))!
    .split(';')[0]!;
}

/** What the page's own fetch() sends. */
function pageHeaders(app: TestApp, cookie: string): Record<string, string> {
  return { cookie, host: `127.0.0.1:${app.port}`, 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' };
}

describe('GET /auth/tableau/embed-token', () => {
  test('answers the connected-app JWT for the signed-in user, never cached, and logs it without the token', async () => {
    const metrics = createMetrics();
    const app = await apps.start({ env: CONNECTED_APP, deps: { metrics } });
    const cookie = await sessionOf(app, 'tina');
    const res = await app.request('GET', PATH, { ...pageHeaders(app, cookie), origin: `http://127.0.0.1:${app.port}` });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = JSON.parse(res.body) as { token: string; expiresAt: number; username: string };
    const now = FIXED_NOW_MS / 1000;
    expect(body).toMatchObject({ username: 'tina', expiresAt: now + 300 });
    const claims = jwt.verify(body.token, SECRET, { algorithms: ['HS256'], audience: 'tableau', issuer: CLIENT_ID, clockTimestamp: now }) as jwt.JwtPayload;
    expect(claims).toMatchObject({ sub: 'tina', scp: ['tableau:views:embed'], exp: now + 300 });
    expect(jwt.decode(body.token, { complete: true })!.header).toMatchObject({ kid: SECRET_ID, iss: CLIENT_ID });
    const logged = app.events('tableau_embed_token');
    expect(logged).toEqual([expect.objectContaining({ user: 'tina', tableau_user: 'tina', jti: claims.jti, expires_at: now + 300 })]);
    expect(app.rawLogs()).not.toContain(body.token.split('.')[2]);
    expect(app.rawLogs()).not.toContain(SECRET);
    expect(await metrics.registry.getSingleMetricAsString('gateway_auth_tableau_embed_tokens_total')).toContain('result="issued"} 1');
  });

  test.each([
    ['without X-Requested-With (a cross-site <img>, form or simple fetch cannot add it)', { 'x-requested-with': undefined }, 'header-missing'],
    ['with Sec-Fetch-Site: cross-site (the browser says another site asked)', { 'sec-fetch-site': 'cross-site' }, 'cross-site'],
    ['with Sec-Fetch-Site: same-site (a sibling subdomain asked)', { 'sec-fetch-site': 'same-site' }, 'cross-site'],
    ['with a foreign Origin', { origin: 'https://evil.example' }, 'origin-mismatch'],
  ])('refuses a request %s', async (_name, overrides, reason) => {
    const app = await apps.start({ env: CONNECTED_APP });
    const cookie = await sessionOf(app, 'tina');
    const headers: Record<string, string | undefined> = { ...pageHeaders(app, cookie), ...overrides };
    for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
    const res = await app.request('GET', PATH, headers as Record<string, string>);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason });
    expect(res.body).not.toContain('token"');
  });

  test('answers 401 without a session, with a forged one, and after logout', async () => {
    const app = await apps.start({ env: CONNECTED_APP });
    expect((await app.request('GET', PATH, pageHeaders(app, ''))).status).toBe(401);
    expect((await app.request('GET', PATH, pageHeaders(app, 'gw_session=forged.token.here'))).status).toBe(401);
    const cookie = await sessionOf(app, 'tina');
    await app.request('POST', '/logout', { cookie, host: `127.0.0.1:${app.port}`, origin: `http://127.0.0.1:${app.port}` });
    const after = await app.request('GET', PATH, pageHeaders(app, cookie));
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body)).toMatchObject({ error: 'unauthenticated', reason: 'session-ended' });
  });

  test('answers 404 when no connected app is configured', async () => {
    const app = await apps.start();
    const cookie = await sessionOf(app, 'tina');
    const res = await app.request('GET', PATH, pageHeaders(app, cookie));
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toEqual({ error: 'not-configured' });
  });

  test('with the email as Tableau name, refuses a user without one (no token for an empty sub)', async () => {
    const app = await apps.start({ env: { ...CONNECTED_APP, TABLEAU_CONNECTED_APP_USERNAME_CLAIM: 'email' } });
    const tina = await app.request('GET', PATH, pageHeaders(app, await sessionOf(app, 'tina')));
    expect(JSON.parse(tina.body)).toMatchObject({ username: 'tina@example.com' });
    const larry = await app.request('GET', PATH, pageHeaders(app, await sessionOf(app, 'larry')));
    expect(larry.status).toBe(403);
    expect(JSON.parse(larry.body)).toEqual({ error: 'forbidden', reason: 'tableau-username-missing' });
  });

  test('limits tokens per session (429 with Retry-After), not per user', async () => {
    const metrics = createMetrics();
    const app = await apps.start({ env: CONNECTED_APP, deps: { metrics } });
    const first = await sessionOf(app, 'tina');
    for (let i = 0; i < TABLEAU_EMBED_TOKEN_RATE_LIMIT.points; i++) expect((await app.request('GET', PATH, pageHeaders(app, first))).status).toBe(200);
    const limited = await app.request('GET', PATH, pageHeaders(app, first));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another session of the same user has its own budget.
    expect((await app.request('GET', PATH, pageHeaders(app, await sessionOf(app, 'tina')))).status).toBe(200);
    expect(await metrics.registry.getSingleMetricAsString('gateway_auth_tableau_embed_tokens_total')).toContain('result="rate-limited"} 1');
  });
});
