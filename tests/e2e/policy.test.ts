/**
 * The access policy in a real browser against `make up` (nginx/policy.yaml, the seed scenario):
 * mccoy signs in and is refused /federation with the branded 403 page, whose button signs him out;
 * kirk, in the Federation group, then signs in on the same browser and reaches /federation.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, Page, Response } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { launchUp, type Launched } from '../support/launcher.js';

describe('access policy in a browser against make up', () => {
  let up: Launched;
  let browser: Browser;
  let shots: string;

  beforeAll(async () => {
    shots = mkdtempSync(join(tmpdir(), 'gw-e2e-policy-'));
    up = await launchUp();
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    const code = await up?.stop();
    if (shots) rmSync(shots, { recursive: true, force: true });
    expect(code).toBe(0);
  }, 30_000);

  const signIn = async (page: Page, username: string) => {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(up.passwords[username]);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  test('mccoy is refused /federation with the 403 page, signs out from it, and kirk gets in', async () => {
    expect(Object.keys(up.passwords).sort()).toEqual(['kirk', 'mccoy']);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // mccoy signs in through the real login form and lands on the start page.
      await page.goto(`${up.baseUrl}/`);
      expect(new URL(page.url()).pathname).toBe('/login');
      await signIn(page, 'mccoy');
      await page.waitForURL(`${up.baseUrl}/`);
      await expect(page.getByRole('row', { name: /X-Payload-username/ }).getByRole('cell').textContent()).resolves.toBe('mccoy');

      // /federation is for the Federation group only: the branded page, with a real 403 status.
      const refused: Response | null = await page.goto(`${up.baseUrl}/federation`);
      const shot = join(shots, 'policy-403.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(readFileSync(shot).subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(refused?.status()).toBe(403);
      expect(new URL(page.url()).pathname).toBe('/federation');
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Access denied');
      await expect(page.title()).resolves.toMatch(/^Access denied/);

      // The page's own button ends the session and offers the login form again.
      await page.getByRole('button', { name: 'Sign out and use another account' }).click();
      await page.waitForURL(/\/login(\?|$)/);
      expect((await context.cookies()).find((c) => c.name === 'gw_session')).toBeUndefined();
      await expect(page.getByRole('button', { name: 'Sign in' }).isVisible()).resolves.toBe(true);

      // kirk signs in on the same browser and reaches /federation.
      await signIn(page, 'kirk');
      await page.waitForURL((url) => url.pathname !== '/login');
      const allowed = await page.goto(`${up.baseUrl}/federation`);
      expect(allowed?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe('/federation');
      await expect(page.getByRole('row', { name: /X-Payload-username/ }).getByRole('cell').textContent()).resolves.toBe('kirk');
      await expect(page.getByRole('row', { name: /X-Payload-groups/ }).getByRole('cell').textContent()).resolves.toBe('Federation');
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- make up output ---\n${up.output()}`;
      throw err;
    } finally {
      await context.close();
    }
  }, 60_000);
});
