/**
 * The access policy also governs the Tableau REST API pass-through (/api/, gate.tableauApi, a
 * js_content handler rather than the js_set gate): a Tableau Viewer the policy refuses gets 403 JSON
 * and Tableau never sees the request; an Explorer it allows reaches Tableau; an ambiguous path is 400.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { accessLogEntry, stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const POLICY = `
default: allow
rules:
  - id: api-writers-only
    path: { prefix: /api }
    priority: 10
    decision: deny
    conditions:
      claims:
        tableau_site_role: [Viewer]
`;

// The same rule as the app `reports` of a server that names it (`set $gate_app reports;`, issue 12),
// where the default app allows everything: /api/ is decided by the app's section.
const APP_POLICY = `default: allow\napps:\n  reports:\n    default: allow\n    rules:\n${POLICY.slice(POLICY.indexOf('  - id:')).replace(/^/gm, '    ').trimEnd()}\n`;
const nameApp = (site: string) => site.replace('    include snippets/gate-server.conf;\n', '    set $gate_app reports;\n    include snippets/gate-server.conf;\n');

describe.each([
  { where: 'the default app', policy: POLICY, editSite: undefined, app: '' },
  { where: 'a server naming the app reports', policy: APP_POLICY, editSite: nameApp, app: 'reports' },
])('the access policy on the Tableau /api/ pass-through ($where)', ({ policy, editSite, app }) => {
  let stack: Stack;
  let tableau: TableauFake;
  let dir: string;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000cc' };
  const PASSWORD = 'tableau only password 8';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-tab-policy-'));
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, policy);
    tableau = await startTableauFake({
      site: SITE,
      users: [
        { name: 'tina', password: PASSWORD, siteRole: 'Explorer', groups: [] },
        { name: 'tom', password: PASSWORD, siteRole: 'Viewer', groups: [] },
      ],
    });
    stack = await startStack({
      env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000', POLICY_FILE: policyFile },
      editSite,
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function session(name: string): Promise<string> {
    const { res, session } = await stack.login(name, PASSWORD);
    expect(res.status).toBe(302);
    return String(session);
  }

  test('a Viewer the policy refuses gets 403 JSON and Tableau never sees the call', async () => {
    const tom = await session('tom');
    const before = tableau.requests.length;
    const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: tom });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
    expect(tableau.requests.length).toBe(before);
    const logged = await accessLogEntry(stack.nginx, (e) => e.status === 403 && String(e.path).startsWith('/api/'));
    expect(logged).toMatchObject({ app, user: 'tom', reason: 'policy-denied', rule: 'api-writers-only' });
  });

  test('an Explorer the policy allows reaches Tableau with the own token', async () => {
    const tina = await session('tina');
    const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: tina });
    expect(res.status).toBe(200);
    expect(tableau.requests.at(-1)!.url).toBe(`/api/3.19/sites/${SITE.id}/workbooks`);
    // Logged under the path the client asked for, not the internal location that answered.
    const logged = await accessLogEntry(stack.nginx, (e) => e.status === 200 && e.path === `/api/3.19/sites/${SITE.id}/workbooks`);
    expect(logged).toMatchObject({ user: 'tina', reason: 'session-valid', rule: 'default' });
  });

  test('an ambiguous path is refused with 400 before Tableau is called', async () => {
    const tina = await session('tina');
    const before = tableau.requests.length;
    const res = await stack.request('GET', '/api/3.19/x/..;/sites', { accept: 'application/json', cookie: tina });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'path-ambiguous' });
    expect(tableau.requests.length).toBe(before);
  });
});

