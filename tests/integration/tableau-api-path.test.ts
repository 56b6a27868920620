/**
 * TABLEAU_API_PATH through the real nginx: with Tableau sign-in on, an app that has its own /api/
 * keeps it when the pass-through moves to another prefix (Tableau still receives /api/...), or when
 * the pass-through is off. The default (/api/) is tableau-api.test.ts.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000cc' };
const PASSWORD = 'tableau only password 7';

for (const apiPath of ['/tableau-api/', 'off']) {
  describe(`TABLEAU_API_PATH=${apiPath} with TABLEAU_URL set`, () => {
    let stack: Stack;
    let tableau: TableauFake;
    const test = stackTest(() => stack);

    beforeAll(async () => {
      tableau = await startTableauFake({ site: SITE, users: [{ name: 'tina', password: PASSWORD, siteRole: 'Explorer', groups: [] }] });
      stack = await startStack({
        env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000' },
        nginxVars: { TABLEAU_API_PATH: apiPath },
      });
    }, 60_000);
    afterAll(async () => {
      await stack?.stop();
      await tableau?.close();
    });

    async function tinaSession(): Promise<{ session: string; token: string }> {
      const { res, session } = await stack.login('tina', PASSWORD);
      expect(res.status).toBe(302);
      return { session: String(session), token: tableau.issuedTokens().at(-1)! };
    }

    test("the app's own /api/ reaches the app, behind the gate, without the Tableau token", async () => {
      const { session, token } = await tinaSession();
      const tableauCalls = tableau.requests.length;
      const res = await stack.request('GET', '/api/orders?limit=5', { accept: 'application/json', cookie: session });
      expect(res.status).toBe(200);
      const seen = stack.upstream.seen.at(-1)!;
      expect(seen.url).toBe('/api/orders?limit=5');
      expect(seen.headers['x-payload-username']).toBe('tina');
      expect(seen.headers['x-tableau-auth']).toBeUndefined();
      expect(JSON.stringify(seen.headers)).not.toContain(token.split('|')[0]!);
      expect(tableau.requests.length).toBe(tableauCalls);
      // Still the gate's: no session, no app.
      const upstreamCalls = stack.upstream.seen.length;
      const anonymous = await stack.request('GET', '/api/orders', { accept: 'application/json' });
      expect(anonymous.status).toBe(401);
      expect(stack.upstream.seen.length).toBe(upstreamCalls);
    });

    if (apiPath === 'off') {
      test('nothing reaches Tableau with the user\'s token: /tableau-api/ is the app\'s too', async () => {
        const { session } = await tinaSession();
        const tableauCalls = tableau.requests.length;
        const res = await stack.request('GET', `/tableau-api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: session });
        expect(res.status).toBe(200);
        expect(stack.upstream.seen.at(-1)!.url).toBe(`/tableau-api/3.19/sites/${SITE.id}/workbooks`);
        expect(tableau.requests.length).toBe(tableauCalls);
      });
    } else {
      test("/tableau-api/... reaches Tableau's /api/... with the user's own token, and the policy path is the gateway's", async () => {
        const { session, token } = await tinaSession();
        const res = await stack.request('GET', `/tableau-api/3.19/sites/${SITE.id}/workbooks?pageSize=5`, { accept: 'application/json', cookie: session, 'x-tableau-auth': 'client-chosen' });
        expect(res.status).toBe(200);
        expect((JSON.parse(res.body) as { calledWith: { token: string } }).calledWith.token).toBe(token);
        expect(tableau.requests.at(-1)!.url).toBe(`/api/3.19/sites/${SITE.id}/workbooks?pageSize=5`);
      });

      test('the moved pass-through keeps its refusals: 401 JSON without a session, 403 for a cross-site POST', async () => {
        const anonymous = await stack.request('GET', `/tableau-api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json' });
        expect(anonymous.status).toBe(401);
        expect(JSON.parse(anonymous.body)).toMatchObject({ error: 'unauthenticated', reason: 'token-missing' });
        expect(tableau.requests.some((r) => r.headers['x-tableau-auth'] === undefined && r.url.includes('/workbooks'))).toBe(false);
        const { session } = await tinaSession();
        const before = tableau.requests.length;
        const crossSite = await stack.request('POST', `/tableau-api/3.19/sites/${SITE.id}/workbooks`, { cookie: session, origin: 'https://evil.example', 'content-length': '0' });
        expect(crossSite.status).toBe(403);
        expect(JSON.parse(crossSite.body)).toMatchObject({ reason: 'cross-site-request' });
        expect(tableau.requests.length).toBe(before);
      });
    }
  });
}
