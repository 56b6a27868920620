/** Debian's Chromium through playwright-core (never a downloaded browser). */
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless, no background networking (the machine is offline); `extra` adds e.g. a proxy. */
export function launchBrowser(extra: Pick<LaunchOptions, 'proxy'> = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    ...extra,
  });
}
