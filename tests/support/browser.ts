/** Debian's Chromium through playwright-core (never a downloaded browser). */
import { chromium, type Browser, type BrowserContext, type LaunchOptions, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless, no background networking (the machine is offline); `extra` adds e.g. a proxy,
 * `trustSpki` the base64 SHA-256 SubjectPublicKeyInfo hashes of server certificates to accept
 * (Chromium's --ignore-certificate-errors-spki-list; tests/support/tls.ts makes them), and
 * `loopbackHosts` host names Chromium resolves to 127.0.0.1 (--host-resolver-rules; the port in
 * the URL is kept), e.g. two app hosts with different parent domains.
 */
export function launchBrowser(extra: Pick<LaunchOptions, 'proxy'> & { trustSpki?: string[]; loopbackHosts?: string[] } = {}): Promise<Browser> {
  const trust = extra.trustSpki === undefined ? [] : [`--ignore-certificate-errors-spki-list=${extra.trustSpki.join(',')}`];
  if (extra.loopbackHosts !== undefined && extra.loopbackHosts.length > 0) {
    trust.push(`--host-resolver-rules=${extra.loopbackHosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...trust],
    ...(extra.proxy === undefined ? {} : { proxy: extra.proxy }),
  });
}

/**
 * Runs `journey` in a fresh context of `browser` (its own cookies), closed afterwards. A failure's
 * message gets `diagnostics()` appended (e.g. the stack's nginx and service logs) when given.
 */
export async function inFreshContext(browser: Browser, journey: (context: BrowserContext, page: Page) => Promise<void>, diagnostics?: () => string): Promise<void> {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await journey(context, page);
  } catch (err) {
    if (diagnostics && err instanceof Error) err.message += '\n' + diagnostics();
    throw err;
  } finally {
    await context.close();
  }
}
