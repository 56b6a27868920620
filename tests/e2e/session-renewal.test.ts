/**
 * Silent renewal (issue 9) in a real browser. Session tokens live 2 s here (leeway 0), so a user
 * who keeps working for a few seconds crosses several token lifetimes: page navigations, a fetch()
 * from the page and a form POST must all reach the app with the user's identity while nginx renews
 * the cookie behind them, and the browser never sees the login form. A revoked session is refused at
 * its next renewal: the browser lands on the login form, which returns it to the page it asked for.
 * Chromium reaches the gateway directly on loopback (AUTH_COOKIE_SECURE=false in the stack).
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { runSessionsCli } from '../../auth-service/src/cli/sessions-cli.js';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { accessLogEntry, stackTest, startStack, type Stack } from '../support/stack.js';

const PASSWORD = 'browser renewal password 42';
const TOKEN_TTL = 2;

interface Claims {
  sid: string;
  iat: number;
  exp: number;
  username: string;
}

function claimsOf(token: string): Claims {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Claims;
}

/** Waits until the gate (whole seconds, leeway 0) sees the token as expired. */
async function untilExpired(token: string): Promise<void> {
  const wait = (claimsOf(token).exp + 1) * 1000 + 50 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** What the echo upstream answers: the request it saw, as JSON. */
interface Echo {
  url: string;
  headers: Record<string, string>;
}

describe('silent renewal in a browser', () => {
  let stack: Stack;
  let browser: Browser;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ env: { SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL), SESSION_LEEWAY_SECONDS: '0' } });
    for (const name of ['kirk', 'spock']) await stack.createUser(name, PASSWORD, { groups: ['Federation'] });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** Runs `journey` in a fresh browser context. */
  const inBrowser = (journey: (context: BrowserContext, page: Page) => Promise<void>) => inFreshContext(browser, journey);

  /** The session token the browser holds, or undefined. */
  async function sessionToken(context: BrowserContext): Promise<string | undefined> {
    return (await context.cookies(stack.baseUrl)).find((c) => c.name === stack.cookieName)?.value;
  }

  /** Fills the real login form the browser is on and waits to land on `landing`. */
  async function signIn(page: Page, name: string, landing: string): Promise<void> {
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(stack.baseUrl + landing);
  }

  async function events(sid: string): Promise<string[]> {
    return (await stack.pool.query<{ event: string }>('SELECT event FROM auth_events WHERE sid = $1 ORDER BY id', [sid])).rows.map((r) => r.event);
  }

  /** What the app received, without the favicon requests Chromium makes on its own after a page loads. */
  const appSeen = () => stack.upstream.seen.filter((r) => r.url !== '/favicon.ico');

  /** The gate's access-log decision for the request to `path` (it renewed it, or passed it as is). */
  async function reasonFor(path: string): Promise<unknown> {
    return (await accessLogEntry(stack.nginx, (e) => e.path === path))?.reason;
  }

  test('a user stays signed in across several token lifetimes: navigations, fetch() and a form POST are renewed in place', () =>
    inBrowser(async (context, page) => {
      // Every page the main frame shows, and every response the page's own requests get.
      const shown: string[] = [];
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame()) shown.push(frame.url());
      });
      const statuses: Array<[string, number]> = [];
      page.on('response', (res) => statuses.push([`${res.request().method()} ${new URL(res.url()).pathname}`, res.status()]));

      await page.goto(`${stack.baseUrl}/start`);
      await signIn(page, 'kirk', '/start');
      const first = (await sessionToken(context))!;
      const { sid } = claimsOf(first);
      expect(claimsOf(first)).toMatchObject({ username: 'kirk' });
      expect(claimsOf(first).exp - claimsOf(first).iat).toBe(TOKEN_TTL);
      const signedInAt = shown.length;
      statuses.length = 0;

      const tokens = [first];
      /** The token after an action: a renewal when `renewed`, the same one otherwise; always the same session. */
      const expectToken = async (renewed: boolean) => {
        const now = (await sessionToken(context))!;
        expect(claimsOf(now)).toMatchObject({ sid, username: 'kirk' });
        if (renewed) {
          expect(now).not.toBe(tokens.at(-1));
          expect(claimsOf(now).exp).toBeGreaterThan(claimsOf(tokens.at(-1)!).exp);
          tokens.push(now);
        } else {
          expect(now).toBe(tokens.at(-1));
        }
      };
      const lastSeen = () => appSeen().at(-1)!;

      const navigate = async (path: string) => {
        stack.upstream.reset();
        const res = await page.goto(stack.baseUrl + path);
        expect(res?.status()).toBe(200);
        expect(page.url()).toBe(stack.baseUrl + path);
        const echo = JSON.parse((await page.locator('body').textContent()) ?? '{}') as Echo;
        expect(echo.url).toBe(path);
        expect(echo.headers).toMatchObject({ 'x-payload-username': 'kirk', 'x-payload-sid': sid });
        expect(lastSeen()).toMatchObject({ method: 'GET', url: path });
      };
      const fetchJson = async (path: string) => {
        stack.upstream.reset();
        const res = await page.evaluate(async (p) => {
          const r = await fetch(p, { headers: { accept: 'application/json' } });
          return { status: r.status, redirected: r.redirected, body: (await r.json()) as Echo };
        }, path);
        expect(res).toMatchObject({ status: 200, redirected: false, body: { url: path, headers: { 'x-payload-username': 'kirk', 'x-payload-sid': sid } } });
        expect(appSeen()).toHaveLength(1);
        expect(lastSeen()).toMatchObject({ method: 'GET', url: path });
      };
      const postForm = async (path: string, comment: string) => {
        // The page is the echo's JSON, on the gateway's origin; a real form on it posts like any app's.
        await page.evaluate((action) => {
          document.body.innerHTML = `<form method="post" action="${action}"><label>Comment <input name="comment"></label><input type="hidden" name="id" value="42"><button>Send</button></form>`;
        }, path);
        await page.getByLabel('Comment').fill(comment);
        stack.upstream.reset();
        const [res] = await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST'), page.getByRole('button', { name: 'Send' }).click()]);
        expect(res.status()).toBe(200);
        await page.waitForURL(stack.baseUrl + path);
        expect(appSeen()).toHaveLength(1);
        expect(lastSeen()).toMatchObject({ method: 'POST', url: path });
        expect(lastSeen().headers).toMatchObject({ 'x-payload-username': 'kirk', 'x-payload-sid': sid, 'content-type': 'application/x-www-form-urlencoded' });
        expect(lastSeen().body.toString('utf8')).toBe(new URLSearchParams({ comment, id: '42' }).toString());
      };

      // Four token lifetimes; each kind of request is the one that meets the expired token once.
      await untilExpired(tokens.at(-1)!);
      await navigate('/reports/q1?year=2026');
      expect(await reasonFor('/reports/q1')).toBe('session-renewed');
      await expectToken(true);
      await fetchJson('/api/v1/items?page=1');
      await postForm('/forms/feedback', 'Zoë says: 100% & more');
      await expectToken(false);

      await untilExpired(tokens.at(-1)!);
      await fetchJson('/api/v1/items?page=2');
      expect(await reasonFor('/api/v1/items')).toBe('session-renewed');
      await expectToken(true);
      await navigate('/reports/q2');
      await expectToken(false);

      await untilExpired(tokens.at(-1)!);
      await postForm('/forms/comment', 'posted with an expired token');
      expect(await reasonFor('/forms/comment')).toBe('session-renewed');
      await expectToken(true);

      await untilExpired(tokens.at(-1)!);
      await navigate('/reports/q4');
      expect(await reasonFor('/reports/q4')).toBe('session-renewed');
      await expectToken(true);

      expect(tokens).toHaveLength(5);
      expect(new Set(tokens).size).toBe(5);
      expect(shown.slice(signedInAt).filter((u) => new URL(u).pathname === '/login')).toEqual([]);
      expect(statuses).toEqual(expect.arrayContaining([['GET /reports/q1', 200], ['GET /api/v1/items', 200], ['POST /forms/comment', 200], ['GET /reports/q4', 200]]));
      expect(statuses.filter(([, status]) => status !== 200)).toEqual([]);
      const audit = await events(sid);
      expect(audit[0]).toBe('login_success');
      expect(audit.filter((e) => e === 'renewal').length).toBeGreaterThanOrEqual(4);
      expect(audit.filter((e) => e !== 'login_success' && e !== 'renewal')).toEqual([]);
    }), 60_000);

  test('a revoked session lands on the login form at its next renewal, loses its cookie, and signing in again returns to the page asked for', () =>
    inBrowser(async (context, page) => {
      await page.goto(`${stack.baseUrl}/start`);
      await signIn(page, 'spock', '/start');
      const token = (await sessionToken(context))!;
      const { sid } = claimsOf(token);
      const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: { DATABASE_URL: stack.databaseUrl } };
      expect(await runSessionsCli(['revoke', sid], io)).toBe(0);

      await untilExpired(token);
      stack.upstream.reset();
      const asked = '/reports/q3?year=2026&x=%C3%A9';
      await page.goto(stack.baseUrl + asked);
      const at = new URL(page.url());
      expect(at.pathname).toBe('/login');
      expect(at.searchParams.get('rd')).toBe(asked);
      await expect(page.getByLabel('Username').isVisible()).resolves.toBe(true);
      expect(await sessionToken(context)).toBeUndefined();
      expect(appSeen()).toEqual([]);
      expect(await events(sid)).toEqual(['login_success', 'revoke', 'renewal_refused']);

      await signIn(page, 'spock', asked);
      const echo = JSON.parse((await page.locator('body').textContent()) ?? '{}') as Echo;
      expect(echo.url).toBe(asked);
      expect(echo.headers['x-payload-username']).toBe('spock');
      const again = claimsOf((await sessionToken(context))!);
      expect(again.username).toBe('spock');
      expect(again.sid).not.toBe(sid);
      expect(echo.headers['x-payload-sid']).toBe(again.sid);
    }), 60_000);
});
