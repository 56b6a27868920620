/**
 * Issue 9 in a real browser: a Tableau user in 1,000 groups (10 pages of Get Groups) signs in with
 * the form, and an Entra user in 1,000 groups (Graph overage) with "Sign in with Microsoft"; both
 * reach /finance through the group rule, the browser keeps a cookie well under its 4 KiB cap, and a
 * 1,000-group user in Contractors is refused. Chromium reaches the gateway as http://gw.test through
 * nginx as its HTTP proxy; the provider is reached directly on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { ENTRA_ACCOUNTS, FINANCE_ID, PUBLIC, startManyGroupsWorld, TABLEAU_USERS, type ManyGroupsWorld } from '../support/many-groups.js';

describe('users in 1,000 groups sign in through Chromium', () => {
  let world: ManyGroupsWorld;
  let browser: Browser;

  beforeAll(async () => {
    world = await startManyGroupsWorld();
    browser = await launchBrowser({ proxy: { server: `http://127.0.0.1:${world.stack.proxyPort}`, bypass: '127.0.0.1' } });
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await world?.stop();
  });

  /** Runs `journey` in a fresh browser context; a failure carries the nginx and service logs. */
  const inBrowser = (journey: (context: BrowserContext, page: Page) => Promise<void>) => inFreshContext(browser, journey, () => world.stack.diagnostics());

  /** What the echo upstream saw, as it answers: the request as JSON. */
  async function upstreamHeaders(page: Page): Promise<Record<string, string>> {
    return (JSON.parse((await page.locator('body').textContent()) ?? '{}') as { headers: Record<string, string> }).headers;
  }

  async function sessionCookieLength(context: BrowserContext): Promise<number> {
    const cookie = (await context.cookies(PUBLIC)).find((c) => c.name === world.stack.cookieName);
    if (cookie === undefined) throw new Error('the browser kept no session cookie');
    return cookie.name.length + 1 + cookie.value.length;
  }

  async function tableauSignIn(page: Page, name: string): Promise<void> {
    await page.goto(`${PUBLIC}/finance`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('Username').fill(name);
    await page.getByLabel('Password').fill(TABLEAU_USERS.find((u) => u.name === name)!.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  test('Tableau, 1,000 groups: the form signs in, /finance opens, the cookie stays small', () =>
    inBrowser(async (context, page) => {
      await tableauSignIn(page, 'tab1000');
      await page.waitForURL(`${PUBLIC}/finance`);
      const headers = await upstreamHeaders(page);
      expect(headers['x-payload-username']).toBe('tab1000');
      expect(headers['x-payload-groups']).toBe('App-Reports,Finance');
      expect(headers['x-payload-groups_count']).toBe('1000');
      expect(await sessionCookieLength(context)).toBeLessThan(2600);
    }), 60_000);

  test('Tableau, 1,000 groups including Contractors: signed in, but /finance is the branded 403 page', () =>
    inBrowser(async (context, page) => {
      await tableauSignIn(page, 'tab1000-contractor');
      await page.waitForURL(`${PUBLIC}/finance`);
      await expect(page.getByRole('heading', { name: 'Access denied' }).isVisible()).resolves.toBe(true);
      expect(await sessionCookieLength(context)).toBeLessThan(2600);
    }), 60_000);

  test('Entra, 1,000 groups through the Graph overage: "Sign in with Microsoft" opens /finance by the alias rule', () =>
    inBrowser(async (context, page) => {
      world.useEntraAccount(ENTRA_ACCOUNTS.find((a) => a.preferredUsername.startsWith('e1000@'))!.oid);
      await page.goto(`${PUBLIC}/finance`);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.getByRole('link', { name: 'Sign in with Microsoft' }).click();
      await page.waitForURL(`${PUBLIC}/finance`);
      const headers = await upstreamHeaders(page);
      expect(headers['x-payload-src']).toBe('azure');
      expect(headers['x-payload-groups']).toBe(FINANCE_ID);
      expect(headers['x-payload-groups_count']).toBe('1000');
      expect(await sessionCookieLength(context)).toBeLessThan(2600);
    }), 60_000);
});
