/**
 * Single sign-on across two hosts with different parent domains (issue 12), in Chromium: the app
 * host app.beta.test sends the browser to the sign-in host auth.alpha.test (PUBLIC_BASE_URL), the
 * user signs in once, the session comes back to app.beta.test by a one-time code, and
 * auth.alpha.test needs no second sign-in either. Signing out on one host ends the session on both:
 * the browser is walked through the other host, which clears its cookie, and both then refuse.
 * Chromium resolves both names to 127.0.0.1 (--host-resolver-rules); one nginx answers both.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const PASSWORD = 'browser sso password 42';

describe('single sign-on across two hosts in a browser', () => {
  let stack: Stack;
  let browser: Browser;
  const test = stackTest(() => stack);
  let A = '';
  let B = '';

  beforeAll(async () => {
    stack = await startStack({
      envFor: ({ proxyPort }) => ({ PUBLIC_BASE_URL: `http://auth.alpha.test:${proxyPort}`, APP_ORIGINS: `http://app.beta.test:${proxyPort}` }),
    });
    A = `http://auth.alpha.test:${stack.proxyPort}`;
    B = `http://app.beta.test:${stack.proxyPort}`;
    await stack.createUser('kirk', PASSWORD, { groups: ['Federation'] });
    browser = await launchBrowser({ loopbackHosts: ['auth.alpha.test', 'app.beta.test'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('sign in once on A, reach B and A without a second sign-in, sign out on B, and both hosts refuse', async () => {
    await inFreshContext(
      browser,
      async (context, page) => {
        // B without a session: its /login sends the browser to A's form.
        await page.goto(`${B}/federation`);
        expect(page.url()).toBe(`${A}/login?rd=${encodeURIComponent(`${B}/federation`)}`);
        await page.getByLabel('Username').fill('kirk');
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in' }).click();
        // A hands the session to B with a one-time code; B's page is the app's.
        await page.waitForURL(`${B}/federation`);
        expect(await page.textContent('body')).toContain('"x-payload-username":"kirk"');
        const cookies = await context.cookies();
        const onA = cookies.find((c) => c.name === 'gw_session' && c.domain === 'auth.alpha.test');
        const onB = cookies.find((c) => c.name === 'gw_session' && c.domain === 'app.beta.test');
        expect(onA?.httpOnly).toBe(true);
        expect(onB?.httpOnly).toBe(true);

        // A: signed in already, no form.
        await page.goto(`${A}/federation`);
        expect(page.url()).toBe(`${A}/federation`);
        expect(await page.textContent('body')).toContain('"x-payload-username":"kirk"');

        // Sign out on B, as the app's own "Sign out" form does.
        await page.goto(`${B}/federation`);
        await page.evaluate(() => {
          document.body.innerHTML = '<form method="post" action="/logout"><button>Sign out</button></form>';
        });
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.waitForURL(`${A}/login?signed_out=1`);
        await page.getByText('You have been signed out').waitFor();
        expect((await context.cookies()).filter((c) => c.name === 'gw_session')).toEqual([]);

        // Both hosts refuse: each ends on A's sign-in form.
        const seen = stack.upstream.seen.length;
        await page.goto(`${B}/federation`);
        expect(page.url()).toBe(`${A}/login?rd=${encodeURIComponent(`${B}/federation`)}`);
        await expect(page.getByLabel('Password').isVisible()).resolves.toBe(true);
        await page.goto(`${A}/federation`);
        expect(page.url()).toBe(`${A}/login?rd=%2Ffederation`);
        await expect(page.getByLabel('Password').isVisible()).resolves.toBe(true);
        expect(stack.upstream.seen.slice(seen).filter((r) => r.url !== '/favicon.ico')).toEqual([]);
      },
      () => stack.diagnostics(),
    );
  }, 60_000);
});
