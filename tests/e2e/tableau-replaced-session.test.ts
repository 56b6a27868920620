/**
 * Signing in again in the same browser, here with Microsoft after a Tableau password sign-in,
 * replaces the session cookie; the Tableau token the old cookie carried must not stay alive for
 * Tableau's 240 minutes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { azureGatewayEnv, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const PUBLIC = 'http://gw.test';
const CLIENT = { id: 'e2e-gateway-tableau', secret: 'client secret for browser tests 1122334455' };
const BOB = { oid: '00000000-0000-0000-0000-0000000000b1', preferredUsername: 'bob@contoso.example', name: 'Bob Example', groups: ['Federation'] };

describe('a new sign-in in the same browser', () => {
  let stack: Stack;
  let provider: TestOidcProvider;
  let tableau: TableauFake;
  let browser: Browser;

  beforeAll(async () => {
    provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + '/login/oauth2/code/azure'], accounts: [BOB] });
    tableau = await startTableauFake({ users: [{ name: 'tina', password: 'tableau only password 7', siteRole: 'Explorer', groups: ['All Users'] }] });
    stack = await startStack({ env: azureGatewayEnv(provider, CLIENT, PUBLIC, { TABLEAU_URL: tableau.url }) });
    browser = await launchBrowser({ proxy: { server: `http://127.0.0.1:${stack.proxyPort}`, bypass: '127.0.0.1' } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await provider?.close();
    await tableau?.close();
  });

  test('"Sign in with Microsoft" after a Tableau sign-in signs the old Tableau token out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${PUBLIC}/federation`);
      await page.getByLabel('Username').fill('tina');
      await page.getByLabel('Password').fill('tableau only password 7');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${PUBLIC}/federation`);
      const tableauToken = tableau.issuedTokens().at(-1)!;
      expect(tableau.isLive(tableauToken)).toBe(true);

      await page.goto(`${PUBLIC}/login?rd=%2Ffederation`);
      await page.getByRole('link', { name: 'Sign in with Microsoft' }).click();
      await page.waitForURL(`${PUBLIC}/federation`);
      const seen = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { headers: Record<string, string> };
      expect(seen.headers['x-payload-src']).toBe('azure');

      const deadline = Date.now() + 3000;
      while (tableau.isLive(tableauToken) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(tableau.isLive(tableauToken)).toBe(false);
      expect(tableau.signedOutTokens()).toContain(tableauToken);
    } catch (err) {
      if (err instanceof Error) err.message += '\n' + stack.diagnostics();
      throw err;
    } finally {
      await context.close();
    }
  }, 60_000);
});
