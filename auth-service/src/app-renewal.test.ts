/**
 * /auth/renew as the app serves it (real HTTP, real PostgreSQL): status codes, JSON bodies and
 * cookies. The renewal rules themselves are in services/renewal.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { appsOnTestDatabase, setCookies } from './app.testkit.js';


const apps = appsOnTestDatabase((db) => db.createUser('alice', 'correct horse battery', { groups: ['staff'] }));
const start = apps.start;

const sessionCookie = (res: Parameters<typeof setCookies>[0]) => setCookies(res).find((c) => c.startsWith('gw_session='));
/** The cookie's attributes without its value. */
const attributesOf = (cookie: string) => cookie.slice(cookie.indexOf(';'));

describe('/auth/renew', () => {
  test('POST answers 204 with a new session cookie carrying the attributes a sign-in sets', async () => {
    const app = await start();
    const login = await app.login('alice', 'correct horse battery');
    const signedIn = sessionCookie(login)!;
    const res = await app.request('POST', '/auth/renew', { cookie: signedIn.split(';')[0]! });
    expect(res.status).toBe(204);
    expect(res.headers['cache-control']).toBe('no-store');
    const renewed = sessionCookie(res)!;
    expect(attributesOf(renewed)).toBe(attributesOf(signedIn));
    expect(app.events('renewal')).toHaveLength(1);
  });

  test('GET answers 200 {exp} with the cookie', async () => {
    const app = await start();
    const signedIn = sessionCookie(await app.login('alice', 'correct horse battery'))!;
    const res = await app.request('GET', '/auth/renew', { cookie: signedIn.split(';')[0]! });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ exp: expect.any(Number) });
    expect(sessionCookie(res)).toBeDefined();
  });

  test('without a cookie: 401 JSON token-missing and a cookie-clearing Set-Cookie', async () => {
    const app = await start();
    const res = await app.request('POST', '/auth/renew');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthenticated', reason: 'token-missing', login: '/login' });
    expect(sessionCookie(res)).toMatch(/^gw_session=; .*Max-Age=0/);
  });

  test('a service without a session store answers 503 JSON (fail closed), never a 500', async () => {
    const withStore = await start();
    const cookie = sessionCookie(await withStore.login('alice', 'correct horse battery'))!.split(';')[0]!;
    const app = await start({ deps: { storage: undefined } });
    const res = await app.request('POST', '/auth/renew', { cookie });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: 'store-unavailable' });
    expect(sessionCookie(res)).toBeUndefined();
  });
});
