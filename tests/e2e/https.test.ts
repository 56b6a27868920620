/**
 * HTTPS in a real browser (issue 10): Chromium trusts only the throwaway CA's server certificate
 * (by its key, --ignore-certificate-errors-spki-list), types the plain http address, is sent to
 * https, signs in, and holds __Host- Secure cookies that the gate accepts.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { freePort } from '../../scripts/lib/nginx-runtime.js';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { makeTestCa } from '../support/tls.js';

const PASSWORD = 'browser https password 42';

describe('HTTPS in a browser', () => {
  let stack: Stack;
  let browser: Browser;
  let dir: string;
  let httpsPort: number;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-e2e-tls-'));
    const ca = makeTestCa(dir);
    httpsPort = await freePort();
    stack = await startStack({
      nginxVars: { TLS_CERT_FILE: ca.certFile, TLS_KEY_FILE: ca.keyFile, HTTPS_PORT: String(httpsPort) },
      env: { PUBLIC_BASE_URL: `https://localhost:${httpsPort}`, AUTH_COOKIE_SECURE: 'true' },
    });
    await stack.createUser('kirk', PASSWORD);
    browser = await launchBrowser({ trustSpki: [ca.spkiSha256] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('http is sent to https; sign-in sets __Host- Secure cookies and reaches the page', async () => {
    await inFreshContext(
      browser,
      async (context, page) => {
        await page.goto(`http://localhost:${stack.proxyPort}/bridge`);
        await page.waitForURL(`https://localhost:${httpsPort}/login?rd=%2Fbridge`);
        await page.getByLabel('Username').fill('kirk');
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.waitForURL(`https://localhost:${httpsPort}/bridge`);
        const echo = JSON.parse((await page.locator('body').innerText()).trim()) as { headers: Record<string, string> };
        expect(echo.headers['x-payload-username']).toBe('kirk');
        expect(echo.headers['x-forwarded-proto']).toBe('https');
        const cookies = await context.cookies(`https://localhost:${httpsPort}/`);
        expect(cookies.map((c) => c.name).sort()).toEqual(['__Host-gw_csrf', '__Host-gw_session']);
        for (const c of cookies) expect(c).toMatchObject({ secure: true, httpOnly: true, path: '/' });
      },
      () => stack.diagnostics(),
    );
  }, 60_000);
});
