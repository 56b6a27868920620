/**
 * Every page a person can meet, in a real browser, checked with axe-core for WCAG 2.2 AA: the
 * login page (plain, after a failed attempt, after sign-out), the sign-out page, and nginx's own
 * 403, 400, 429 and 50x pages (the app down, the sign-in service down, a renewal that cannot be made).
 * Each carries BRAND_NAME, keeps its card inside a 375 px wide screen, and has a focus ring of at
 * least 3:1 against the card. Then the same pages with an operator's theme (BRAND_CSS_FILE,
 * BRAND_LOGO_FILE): the auth service's pages and nginx's take the same colours and logo.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { SEED_POLICY_FILE } from '../support/policy.js';
import { stackTest, startStack, withDownLocation, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;
const BRAND = 'Starfleet Access';
const PASSWORD = 'correct horse battery staple';

interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  nodes: Array<{ target: string[]; failureSummary: string }>;
}

/** axe-core's WCAG 2.0/2.1/2.2 A and AA rules on the page as it is now; the violations, readable. */
async function wcagViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the pages' CSP (no script at all) stays in force.
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } });
    return result.violations;
  });
  return violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`).join('; ')}`);
}

/** The card's distance to both edges and the page's scroll width on a 375 px wide screen. */
async function cardAt375(page: Page): Promise<{ left: number; right: number; scrollWidth: number }> {
  await page.setViewportSize({ width: 375, height: 740 });
  const box = await page.evaluate(() => {
    const r = document.querySelector('main')!.getBoundingClientRect();
    return { left: r.left, right: window.innerWidth - r.right, scrollWidth: document.documentElement.scrollWidth };
  });
  await page.setViewportSize({ width: 1280, height: 800 });
  return { left: Math.round(box.left), right: Math.round(box.right), scrollWidth: box.scrollWidth };
}

/** WCAG relative-luminance contrast of two computed `rgb(...)` colours. */
function contrast(a: string, b: string): number {
  const lum = (rgb: string) => {
    const [r, g, bl] = (rgb.match(/[0-9.]+/g) ?? []).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** Tabs to the first focusable element; its outline colour and width, and the card's background. */
async function focusRing(page: Page): Promise<{ width: string; ring: string; card: string; tag: string }> {
  await page.locator('body').click({ position: { x: 1, y: 1 } });
  await page.keyboard.press('Tab');
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement;
    const style = getComputedStyle(el);
    return { width: style.outlineWidth, ring: style.outlineColor, card: getComputedStyle(document.querySelector('main')!).backgroundColor, tag: el.tagName };
  });
}

describe('every page, in a browser: WCAG 2.2 AA, BRAND_NAME, 375 px, focus ring, theme', () => {
  let stack: Stack;
  let browser: Browser;
  let themeDir: string;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    themeDir = mkdtempSync(join(tmpdir(), 'gw-theme-'));
    stack = await startStack({
      env: { POLICY_FILE: SEED_POLICY_FILE, BRAND_NAME: BRAND },
      // A protected location whose upstream is down: nginx answers 502 itself.
      editSite: withDownLocation,
    });
    await stack.createUser('mccoy', PASSWORD, { groups: ['Medical'] });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    if (themeDir) rmSync(themeDir, { recursive: true, force: true });
  });

  const signIn = async (page: Page, password = PASSWORD) => {
    await page.goto(`${stack.baseUrl}/login`);
    await page.getByLabel('Username').fill('mccoy');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  /** A session token that expired a minute ago but is otherwise valid: the gate renews it first. */
  const expiredSession = async (context: BrowserContext) => {
    const now = nowSeconds();
    const token = signWith(headerSegmentFor(stack.secret), claimsFor('127.0.0.1', now, { username: 'mccoy', groups: ['Medical'], iat: now - 600, exp: now - 60 }), stack.secret);
    await context.addCookies([{ name: 'gw_session', value: token, url: stack.baseUrl }]);
  };

  /** Each page: how to reach it, its status, and a text that proves it is the right one. */
  const journeys: Array<[string, (page: Page, context: BrowserContext) => Promise<number | undefined>, string]> = [
    ['the login page', async (page) => (await page.goto(`${stack.baseUrl}/login?rd=/reports`))?.status(), 'Sign in'],
    [
      'the login page after a failed attempt',
      async (page) => {
        await signIn(page, 'wrong password, surely');
        await page.getByRole('alert').waitFor();
        return 401;
      },
      'Invalid username or password.',
    ],
    [
      'the login page after sign-out',
      async (page) => {
        await signIn(page);
        await page.waitForURL((u) => u.pathname === '/');
        await page.goto(`${stack.baseUrl}/logout`);
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.waitForURL((u) => u.pathname === '/login');
        return 200;
      },
      'You have been signed out.',
    ],
    ['the sign-out page', async (page) => (await page.goto(`${stack.baseUrl}/logout`))?.status(), 'Sign out'],
    [
      "nginx's 403 page",
      async (page) => {
        await signIn(page);
        await page.waitForURL((u) => u.pathname === '/');
        return (await page.goto(`${stack.baseUrl}/federation`))?.status();
      },
      'You are signed in as mccoy.',
    ],
    [
      "nginx's 400 page",
      async (page) => {
        await signIn(page);
        await page.waitForURL((u) => u.pathname === '/');
        return (await page.goto(`${stack.baseUrl}/federation%5c`))?.status();
      },
      'could not be understood safely',
    ],
    [
      "nginx's 429 page",
      async (page, context) => {
        // The sign-in flood guard (10/s, burst 20 per address) is kept tripped until the form's own POST
        // has its answer. nginx lets one request through per 100 ms whatever the flood, so on a busy
        // machine the form's POST can be that one: then it is signed out and tried again.
        const post = () => stack.request('POST', '/login', { 'content-length': '0' }, '');
        let status: number | undefined;
        for (let attempt = 0; attempt < 5 && status !== 429; attempt++) {
          await context.clearCookies();
          await page.goto(`${stack.baseUrl}/login`);
          await page.getByLabel('Username').fill('mccoy');
          await page.getByLabel('Password').fill(PASSWORD);
          let answered = false;
          await Promise.all(Array.from({ length: 30 }, post));
          const floods = Array.from({ length: 4 }, async () => {
            while (!answered) await Promise.all(Array.from({ length: 10 }, post));
          });
          const answer = page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST');
          await page.getByRole('button', { name: 'Sign in' }).click();
          status = (await answer).status();
          answered = true;
          await Promise.all(floods);
        }
        return status;
      },
      'Too many requests arrived from your address.',
    ],
    [
      "nginx's 50x page: the app is down",
      async (page) => {
        await signIn(page);
        await page.waitForURL((u) => u.pathname === '/');
        return (await page.goto(`${stack.baseUrl}/down/x`))?.status();
      },
      'The application behind this gateway is not answering',
    ],
  ];
  const authDown: typeof journeys = [
    ["nginx's 50x page: the sign-in service is down", async (page) => (await page.goto(`${stack.baseUrl}/login`))?.status(), 'The sign-in service of this gateway is not answering'],
    [
      "nginx's 50x page: a renewal cannot be made",
      async (page, context) => {
        await expiredSession(context);
        return (await page.goto(`${stack.baseUrl}/reports`))?.status();
      },
      'The sign-in service of this gateway is not answering',
    ],
  ];
  const statuses: Record<string, number> = {
    'the login page': 200,
    'the login page after a failed attempt': 401,
    'the login page after sign-out': 200,
    'the sign-out page': 200,
    "nginx's 403 page": 403,
    "nginx's 400 page": 400,
    "nginx's 429 page": 429,
    "nginx's 50x page: the app is down": 502,
    "nginx's 50x page: the sign-in service is down": 502,
    "nginx's 50x page: a renewal cannot be made": 503,
  };

  async function checkPage(name: string, reach: (page: Page, context: BrowserContext) => Promise<number | undefined>, text: string): Promise<void> {
    await inFreshContext(browser, async (context, page) => {
      const status = await reach(page, context);
      expect({ name, status }).toEqual({ name, status: statuses[name] });
      await expect(page.locator('main').textContent()).resolves.toContain(text);
      await expect(page.locator('main .brand').textContent()).resolves.toBe(BRAND);
      await expect(page.title()).resolves.toMatch(new RegExp(` · ${BRAND}$`));
      expect({ name, violations: await wcagViolations(page) }).toEqual({ name, violations: [] });
      const card = await cardAt375(page);
      expect({ name, ...card }).toEqual({ name, left: expect.any(Number), right: expect.any(Number), scrollWidth: 375 });
      expect(card.left).toBeGreaterThanOrEqual(12);
      expect(card.right).toBeGreaterThanOrEqual(12);
      const ring = await focusRing(page);
      expect(ring.width).toBe('3px');
      expect({ name, element: ring.tag, contrast: contrast(ring.ring, ring.card) >= 3 }).toEqual({ name, element: ring.tag, contrast: true });
    });
  }

  for (const [name, reach, text] of journeys) {
    test(`${name}: no WCAG 2.2 AA violation, BRAND_NAME, margins at 375 px, a 3:1 focus ring`, () => checkPage(name, reach, text), 60_000);
  }

  test('with the sign-in service down: its 50x pages pass the same checks', async () => {
    await stack.stopAuthService();
    try {
      for (const [name, reach, text] of authDown) await checkPage(name, reach, text);
    } finally {
      await stack.restartAuthService({});
    }
  }, 60_000);

  test("a theme (BRAND_CSS_FILE, BRAND_LOGO_FILE) restyles the auth service's pages and nginx's alike, and they still pass", async () => {
    const css = join(themeDir, 'theme.css');
    const logo = join(themeDir, 'logo.svg');
    writeFileSync(css, ':root{--gw-accent:#7c2d12;--gw-accent-hover:#431407;--gw-page-bg:#fffbeb}\n');
    writeFileSync(logo, '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><circle cx="20" cy="20" r="18" fill="#7c2d12"/></svg>');
    // The restarted service rewrites nginx's pages; nginx reads them per request, no reload needed.
    await stack.restartAuthService({ BRAND_CSS_FILE: css, BRAND_LOGO_FILE: logo });
    try {
      for (const [name, reach, text] of [journeys[0]!, journeys[4]!, journeys[7]!]) {
        await checkPage(name, reach, text);
        await inFreshContext(browser, async (context, page) => {
          await reach(page, context);
          const look = await page.evaluate(() => {
            const img = document.querySelector('main .brand img') as HTMLImageElement | null;
            const accentOf = document.querySelector('button, main a');
            return {
              page: getComputedStyle(document.body).backgroundColor,
              accent: accentOf === null ? null : getComputedStyle(accentOf).getPropertyValue(accentOf.tagName === 'A' ? 'color' : 'background-color'),
              // 0 when the CSP or the data: URI kept the image from loading.
              logoWidth: img?.naturalWidth ?? 0,
            };
          });
          expect({ name, ...look }).toEqual({ name, page: 'rgb(255, 251, 235)', accent: 'rgb(124, 45, 18)', logoWidth: 40 });
        });
      }
    } finally {
      await stack.restartAuthService({});
    }
  }, 90_000);
});
