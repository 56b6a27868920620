/**
 * A Tableau dashboard embedded in a page behind the gateway, in Chromium: the page's own script
 * fetches /auth/tableau/embed-token with the session cookie and hands the Connected App JWT to the
 * Embedding API v3 (`<tableau-viz>`, the Tableau fake's stand-in), so the signed-in user sees the
 * view without Tableau's sign-in page. A tampered, expired or replayed token, or a page on an origin
 * the connected app's domain allowlist does not name, shows Tableau's refusal instead; without a token the user meets Tableau's sign-in page, as before this feature.
 * Chromium reaches the gateway as http://gw.test through nginx as its proxy, Tableau directly.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Browser, BrowserContext, Frame, Page } from 'playwright-core';
import { inFreshContext, launchBrowser } from '../support/browser.js';
import { startStack, type Stack } from '../support/stack.js';
import { EMBEDDING_LIBRARY_PATH, startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const PUBLIC = 'http://gw.test';
const PASSWORD = 'local user password 42';
const APP = { clientId: 'e2e-connected-app', secret: { id: 'e2e-secret-1', value: randomBytes(32).toString('base64') } };

/**
 * The app's dashboard page (what an operator's app serves behind the gateway): it asks the gateway
 * for a token and embeds Sales/Overview with it. `?views=2` embeds it twice with one token (a
 * replay); `?token=none` embeds it without a token; `?token=tampered` flips a character of the
 * token's signature first (as a forger without the secret would have to).
 */
function dashboardPage(tableauUrl: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboards</title>
<script type="module" src="${tableauUrl}${EMBEDDING_LIBRARY_PATH}"></script></head>
<body><h1>Dashboards</h1><p role="status" id="status">Loading</p><div id="views"></div>
<script type="module">
const params = new URLSearchParams(location.search);
let token = '';
if (params.get('token') !== 'none') {
  const res = await fetch('/auth/tableau/embed-token', { headers: { 'X-Requested-With': 'XMLHttpRequest' } });
  token = res.ok ? (await res.json()).token : '';
  if (params.get('token') === 'tampered') {
    const dot = token.lastIndexOf('.') + 1;
    token = token.slice(0, dot) + (token[dot] === 'A' ? 'B' : 'A') + token.slice(dot + 1);
  }
  document.getElementById('status').textContent = 'Token ' + res.status;
} else {
  document.getElementById('status').textContent = 'No token';
}
for (let i = 0; i < Number(params.get('views') || 1); i++) {
  const viz = document.createElement('tableau-viz');
  viz.setAttribute('src', '${tableauUrl}/views/Sales/Overview');
  viz.setAttribute('title', 'Sales overview ' + (i + 1));
  if (token) viz.setAttribute('token', token);
  document.getElementById('views').append(viz);
}
</script></body></html>`;
}

describe('an embedded Tableau view behind the gateway', () => {
  let stack: Stack;
  let tableau: TableauFake;
  let app: Server;
  let browser: Browser;

  beforeAll(async () => {
    tableau = await startTableauFake({
      users: [{ name: 'tina', password: 'unused tableau password 1', siteRole: 'Viewer', groups: [] }],
      connectedApp: { clientId: APP.clientId, secrets: [APP.secret], domainAllowlist: [PUBLIC] },
      views: { 'Sales/Overview': 'Sales overview' },
    });
    app = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(dashboardPage(tableau.url));
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const appPort = (app.address() as AddressInfo).port;
    stack = await startStack({
      env: { TABLEAU_CONNECTED_APP_CLIENT_ID: APP.clientId, TABLEAU_CONNECTED_APP_SECRET_ID: APP.secret.id, TABLEAU_CONNECTED_APP_SECRET_VALUE: APP.secret.value },
      // The operator's dashboard app, protected like any other location.
      editSite: (site) =>
        site.replace(
          '    include snippets/gate-server.conf;',
          `    include snippets/gate-server.conf;
    location = /dashboards {
        include snippets/protect.conf;
        proxy_pass http://127.0.0.1:${appPort};
    }`,
        ),
    });
    await stack.createUser('tina', PASSWORD);
    browser = await launchBrowser({ proxy: { server: `http://127.0.0.1:${stack.proxyPort}`, bypass: '127.0.0.1' } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
    await tableau?.close();
  });

  const inBrowser = (journey: (context: BrowserContext, page: Page) => Promise<void>) => inFreshContext(browser, journey, () => stack.diagnostics());

  async function signInToDashboards(page: Page, query = ''): Promise<void> {
    await page.goto(`${PUBLIC}/dashboards${query}`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('Username').fill('tina');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${PUBLIC}/dashboards${query}`);
  }

  /** The heading and text inside the embedded view's frame, once it has loaded. */
  async function viewOf(page: Page, n = 1): Promise<{ heading: string; text: string }> {
    const handle = await page.waitForSelector(`iframe[title="Sales overview ${n}"]`);
    let frame: Frame | null = null;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      frame = await handle.contentFrame();
      if (frame !== null && frame.url().startsWith(tableau.url) && (await frame.locator('h1').count()) > 0) break;
      await page.waitForTimeout(50);
    }
    if (frame === null) throw new Error('the embedded view never loaded');
    return { heading: (await frame.locator('h1').textContent()) ?? '', text: (await frame.locator('p').textContent()) ?? '' };
  }

  test('the signed-in user sees the dashboard, without Tableau\'s sign-in page', () =>
    inBrowser(async (_context, page) => {
      await signInToDashboards(page);
      await expect(viewOf(page)).resolves.toEqual({ heading: 'Sales overview', text: 'Signed in to Tableau as tina.' });
      const last = tableau.embedSignIns().at(-1)!;
      expect(last).toMatchObject({ view: 'Sales/Overview', origin: PUBLIC, verdict: { ok: true, username: 'tina' } });
    }), 60_000);

  test('without a token (before this feature) the user meets Tableau\'s sign-in page', () =>
    inBrowser(async (_context, page) => {
      await signInToDashboards(page, '?token=none');
      await expect(viewOf(page)).resolves.toMatchObject({ heading: 'Sign in to Tableau' });
    }), 60_000);

  test('a tampered token shows Tableau\'s refusal', () =>
    inBrowser(async (_context, page) => {
      await signInToDashboards(page, '?token=tampered');
      const view = await viewOf(page);
      expect(view.heading).toBe('Tableau could not sign you in');
      expect(view.text).toMatch(/^Error 16 LOGIN_FAILED: .*signature/);
    }), 60_000);

  test('an expired token shows Tableau\'s refusal (Tableau\'s clock 301 s past the 300 s token)', () =>
    inBrowser(async (_context, page) => {
      tableau.setClockOffset(301);
      try {
        await signInToDashboards(page);
        const view = await viewOf(page);
        expect(view.heading).toBe('Tableau could not sign you in');
        expect(view.text).toMatch(/expired/);
      } finally {
        tableau.setClockOffset(0);
      }
    }), 60_000);

  test("a gateway origin missing from the connected app's domain allowlist gets no view", () =>
    inBrowser(async (_context, page) => {
      tableau.setDomainAllowlist(['https://portal.example.com']);
      try {
        const before = tableau.embedSignIns().length;
        await signInToDashboards(page);
        const deadline = Date.now() + 10_000;
        while (tableau.embedSignIns().length === before && Date.now() < deadline) await page.waitForTimeout(50);
        expect(tableau.embedSignIns().at(-1)).toMatchObject({ origin: PUBLIC, verdict: { ok: false, summary: 'EMBED_DOMAIN_NOT_ALLOWED' } });
        // Tableau's frame-ancestors keeps Chromium from even showing the refusal inside the page.
        const frame = await (await page.waitForSelector('iframe[title="Sales overview 1"]')).contentFrame();
        await page.waitForTimeout(300);
        expect(frame === null || !(await frame.content()).includes('Signed in to Tableau')).toBe(true);
      } finally {
        tableau.setDomainAllowlist([PUBLIC]);
      }
    }), 60_000);

  test('one token used for two views: the replay is refused', () =>
    inBrowser(async (_context, page) => {
      await signInToDashboards(page, '?views=2');
      const views = [await viewOf(page, 1), await viewOf(page, 2)];
      expect(views.map((v) => v.heading).sort()).toEqual(['Sales overview', 'Tableau could not sign you in']);
      expect(views.find((v) => v.heading !== 'Sales overview')!.text).toMatch(/already been used/);
    }), 60_000);
});
