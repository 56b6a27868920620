/**
 * Sign-in with an OpenID Provider in a real browser: the protected page sends the user to the login
 * page, "Sign in with Microsoft" goes through the provider (automatic login) and back, and the
 * protected page shows the Azure identity. The gateway is reached as http://gw.test: Chromium uses
 * nginx as its HTTP proxy, and loopback (the provider) is reached directly.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { startStack, type Stack } from '../support/stack.js';

const PUBLIC = 'http://gw.test';
const CLIENT = { id: 'e2e-gateway', secret: 'client secret for browser tests 0987654321' };
const BOB = { oid: '00000000-0000-0000-0000-0000000000b0', preferredUsername: 'bob@contoso.example', name: 'Bob Example', groups: ['Federation'] };

describe('OIDC sign-in in a browser', () => {
  let stack: Stack;
  let provider: TestOidcProvider;
  let browser: Browser;

  beforeAll(async () => {
    provider = await startOidcProvider({ clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUris: [PUBLIC + '/login/oauth2/code/azure'], accounts: [BOB] });
    stack = await startStack({
      env: {
        AZURE_TENANT_ID: provider.tenant,
        AZURE_CLIENT_ID: CLIENT.id,
        AZURE_CLIENT_SECRET: CLIENT.secret,
        OIDC_ISSUER: provider.issuer,
        PUBLIC_BASE_URL: PUBLIC,
        ALLOW_INSECURE_HTTP_IDP: 'true',
      },
    });
    browser = await launchBrowser({ proxy: { server: `http://127.0.0.1:${stack.proxyPort}`, bypass: '127.0.0.1' } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await provider?.close();
  });

  test('clicking "Sign in with Microsoft" lands on the protected page with the Azure identity', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${PUBLIC}/federation`);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.getByRole('link', { name: 'Sign in with Microsoft' }).click();
      await page.waitForURL(`${PUBLIC}/federation`);
      // The echo upstream answers with the request it saw, as JSON.
      const seen = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { headers: Record<string, string> };
      expect(seen.headers).toMatchObject({
        'x-payload-username': BOB.preferredUsername,
        'x-payload-name': BOB.name,
        'x-payload-src': 'azure',
        'x-payload-groups': 'Federation',
        'x-payload-sub': `azure:${provider.tenant}:${BOB.oid}`,
      });
      const cookies = await context.cookies(PUBLIC);
      expect(cookies.find((c) => c.name === stack.cookieName)).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
      expect(cookies.find((c) => c.name === 'gw_oidc')).toBeUndefined();
    } catch (err) {
      if (err instanceof Error) err.message += '\n' + stack.diagnostics();
      throw err;
    } finally {
      await context.close();
    }
  }, 60_000);
});
