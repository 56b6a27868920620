/**
 * The user's journey in a real browser against `make up` itself: the protected page, the login form,
 * the landing page with the identity, a failed login, and sign-out.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { launchUp, type Launched } from '../support/launcher.js';

describe('browser journey against make up', () => {
  let up: Launched;
  let browser: Browser;

  beforeAll(async () => {
    up = await launchUp();
    browser = await launchBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    const code = await up?.stop();
    expect(code).toBe(0);
  }, 30_000);

  const withPage = async (fn: (page: Page) => Promise<void>) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await fn(page);
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- make up output ---\n${up.output()}`;
      throw err;
    } finally {
      await context.close();
    }
  };

  test('first run prints the generated demo passwords once', () => {
    expect(Object.keys(up.passwords).sort()).toEqual(['kirk', 'mccoy']);
    expect(up.passwords.kirk).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(up.passwords.kirk).not.toBe(up.passwords.mccoy);
  });

  test('kirk opens /federation, signs in, lands there with his identity, and signs out', async () => {
    await withPage(async (page) => {
      await page.goto(`${up.baseUrl}/federation`);
      expect(new URL(page.url()).pathname).toBe('/login');
      expect(new URL(page.url()).searchParams.get('rd')).toBe('/federation');

      await page.getByLabel('Username').fill('kirk');
      await page.getByLabel('Password').fill(up.passwords.kirk);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${up.baseUrl}/federation`);

      const row = page.getByRole('row', { name: /X-Payload-username/ });
      await expect(row.getByRole('cell').textContent()).resolves.toBe('kirk');
      await expect(page.getByRole('row', { name: /X-Payload-groups/ }).getByRole('cell').textContent()).resolves.toBe('Federation');

      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'gw_session');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/login/);
      expect((await page.context().cookies()).find((c) => c.name === 'gw_session')).toBeUndefined();
      await expect(page.getByRole('status').textContent()).resolves.toBe('You have been signed out.');

      await page.goto(`${up.baseUrl}/federation`);
      expect(new URL(page.url()).pathname).toBe('/login');
    });
  });

  test('a wrong password shows one generic alert and keeps the user on the form', async () => {
    await withPage(async (page) => {
      await page.goto(`${up.baseUrl}/`);
      await page.getByLabel('Username').fill('mccoy');
      await page.getByLabel('Password').fill('definitely-wrong');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('Invalid username or password.');
      expect(new URL(page.url()).pathname).toBe('/login');
    });
  });
});
