/**
 * Issue 11 (2): the database goes away while people sign in and sessions renew, once refusing
 * connections and once accepting them but never answering (a hung host). Every answer is a clear
 * refusal (503 branded page for sign-in and browser renewals, 401 JSON for API renewals), never a
 * 500 or a hang (the pool's 2 s connect and 5 s query timeouts bound it); and both recover when
 * the database returns, without restarting anything. (Valid tokens never touch the store:
 * store-outage.test.ts.)
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type HttpResult, type Stack } from '../../support/stack.js';
import { waitUntil } from '../../support/wait.js';

const PASSWORD = 'store down test password 12';
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const TOKEN_TTL = 2;
const USERS = ['kirk', 'spock', 'uhura', 'sulu', 'chekov', 'scotty'];

const expOf = (session: string): number => (JSON.parse(Buffer.from(session.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number }).exp;

/** A response that is neither a 5xx other than 503 nor a leaked stack trace. */
function expectClearRefusal(res: HttpResult): void {
  expect(res.status === 500 || res.status === 502 || res.status === 504).toBe(false);
  expect(res.body).not.toMatch(/\bat [\w.<>]+ \(|Error: |ECONN|pg_|node_modules/);
}

describe('database down during sign-ins and renewals', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ cuttableStore: true, env: { SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL), SESSION_LEEWAY_SECONDS: '0', LOGIN_RATE_LIMIT_IP: '1000/60' } });
    for (const u of USERS) await stack.createUser(u, PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  for (const mode of ['cut', 'hang'] as const) {
    test(`store ${mode === 'cut' ? 'refusing connections' : 'hung (accepts, never answers)'}: clear 503/401 answers, no 500, recovery without a restart`, async () => {
      // Expired tokens (renewals) and a valid one signed as the service signs (no renewal needed).
      const sessions: string[] = [];
      for (const u of USERS) sessions.push((await stack.login(u, PASSWORD, '/')).session!);
      expect(sessions.every((s) => s !== null)).toBe(true);
      await new Promise((r) => setTimeout(r, (Math.max(...sessions.map(expOf)) + 1) * 1000 + 50 - Date.now()));

      await (mode === 'cut' ? stack.dbRelay!.cut() : stack.dbRelay!.hang());
      try {
        const started = Date.now();
        const [logins, pages, apis] = await Promise.all([
          Promise.all(USERS.map((u) => stack.login(u, PASSWORD, '/'))),
          Promise.all(sessions.map((s, i) => stack.request('GET', `/reports/${i}`, { accept: BROWSER, cookie: s }))),
          Promise.all(sessions.map((s, i) => stack.request('GET', `/api/items/${i}`, { accept: 'application/json', cookie: s }))),
        ]);
        // Bounded by the pool's timeouts (2 s connect, 5 s query), never by nginx's 60 s.
        expect(Date.now() - started).toBeLessThan(30_000);
        for (const { res, session } of logins) {
          expectClearRefusal(res);
          expect(res.status).toBe(503);
          expect(res.body).toMatch(/temporarily unavailable/i);
          expect(session).toBeNull();
        }
        for (const page of pages) {
          expectClearRefusal(page);
          expect(page.status).toBe(503);
          expect(page.body).toMatch(/<title>[^<]*Identity Gateway<\/title>/);
        }
        for (const api of apis) {
          expect(api.status).toBe(401);
          expect(JSON.parse(api.body)).toMatchObject({ reason: 'renewal-unavailable' });
        }
      } finally {
        await stack.dbRelay!.restore();
      }

      // Back: the same expired sessions renew, and sign-in works, with no restart of anything.
      expect(await waitUntil(async () => (await stack.request('GET', '/reports/back', { accept: BROWSER, cookie: sessions[0]! })).status === 200, 15_000)).toBe(true);
      for (const [i, s] of sessions.entries()) expect((await stack.request('GET', `/reports/${i}`, { accept: BROWSER, cookie: s })).status).toBe(200);
      const again = await stack.login('kirk', PASSWORD, '/');
      expect(again.res.status).toBe(302);
      expect(again.session).not.toBeNull();
      expect(stack.authLogs()).not.toMatch(/"event":"internal_error"/);
      expect(stack.nginx.errorLog()).not.toMatch(/exited on signal/);
    }, 60_000);
  }
});
