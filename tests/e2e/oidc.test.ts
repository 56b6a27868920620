/**
 * Sign-in with an OpenID Provider in a real browser: the protected page sends the user to the login
 * page, "Sign in with Microsoft" goes through the provider (automatic login) and back, and the
 * protected page shows the Azure identity; the provider's front-channel logout signs the browser out
 * while a bare cross-site link does not; a provider that fails shows the branded 503 page. The
 * gateway is reached as http://gw.test: Chromium uses nginx as its HTTP proxy, and loopback (the
 * provider) is reached directly.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { azureGatewayEnv, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
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
    stack = await startStack({ env: azureGatewayEnv(provider, CLIENT, PUBLIC, { PAYLOAD_GROUPS: '*' }) });
    browser = await launchBrowser({ proxy: { server: `http://127.0.0.1:${stack.proxyPort}`, bypass: '127.0.0.1' } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await provider?.close();
  });

  /** Runs `journey` in a fresh browser context; a failure carries the nginx and service logs. */
  const inBrowser = (journey: (context: BrowserContext, page: Page) => Promise<void>) => inFreshContext(browser, journey, () => stack.diagnostics());

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${PUBLIC}/federation`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByRole('link', { name: 'Sign in with Microsoft' }).click();
    await page.waitForURL(`${PUBLIC}/federation`);
  }

  test('clicking "Sign in with Microsoft" lands on the protected page with the Azure identity', () =>
    inBrowser(async (context, page) => {
      await signIn(page);
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
    }), 60_000);

  test('front-channel logout: a bare link from another site is refused, the provider\'s request with iss and sid signs out', () =>
    inBrowser(async (context, page) => {
      await signIn(page);
      const session = (await context.cookies(PUBLIC)).find((c) => c.name === stack.cookieName)!;
      const idpSid = JSON.parse(Buffer.from(session.value.split('.')[1]!, 'base64url').toString('utf8')).idp_sid as string;

      // Any site can link here; without the provider's iss and sid the session stays.
      await page.goto(`${provider.issuer}/.well-known/openid-configuration`);
      await page.goto(`${PUBLIC}/logout/frontchannel`);
      await expect(page.getByRole('heading', { name: 'Sign-out refused' }).isVisible()).resolves.toBe(true);
      await page.goto(`${PUBLIC}/federation`);
      expect(new URL(page.url()).pathname).toBe('/federation');

      await page.goto(`${PUBLIC}/logout/frontchannel?iss=${encodeURIComponent(provider.issuer)}&sid=${encodeURIComponent(idpSid)}`);
      await expect(page.getByRole('heading', { name: 'Signed out' }).isVisible()).resolves.toBe(true);
      await page.goto(`${PUBLIC}/federation`);
      expect(new URL(page.url()).pathname).toBe('/login');
    }), 60_000);

  test('a token endpoint that answers 500 shows the branded "Sign-in unavailable" page with a way back', () =>
    inBrowser(async (context, page) => {
      provider.setTamper('server-error');
      try {
        await page.goto(`${PUBLIC}/login?rd=%2Ffederation`);
        await page.getByRole('link', { name: 'Sign in with Microsoft' }).click();
        await page.getByRole('heading', { name: 'Sign-in unavailable' }).waitFor();
        await expect(page.getByRole('alert').textContent()).resolves.toContain('The identity provider is not reachable right now');
        await page.getByRole('link', { name: 'Back to sign-in' }).click();
        expect(new URL(page.url()).pathname).toBe('/login');
        expect((await context.cookies(PUBLIC)).find((c) => c.name === stack.cookieName)).toBeUndefined();
      } finally {
        provider.setTamper('none');
      }
    }), 60_000);
});
