/**
 * Tableau as the second identity source, through the real nginx gate: a Tableau-only user signs in
 * with the form and reaches the upstream with Tableau's claims; a local user's wrong password stays
 * local; a Tableau that is down gives a clear 503, not "wrong password".
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

describe('Tableau sign-in through nginx', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000aa' };

  beforeAll(async () => {
    tableau = await startTableauFake({
      site: SITE,
      users: [{ name: 'tina', password: 'tableau only password 7', fullName: 'Tina Tableau', email: 'tina@example.com', siteRole: 'Explorer', groups: ['All Users', 'Sales'] }],
    });
    stack = await startStack({
      env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000' },
    });
    await stack.createUser('larry', 'local user password 42');
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  test('a Tableau-only user logs in with the form and the upstream sees the Tableau identity', async () => {
    const { res, session } = await stack.login('tina', 'tableau only password 7', '/reports');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/reports');
    expect(session).not.toBeNull();
    expect(tableau.signIns()).toHaveLength(1);

    const page = await stack.request('GET', '/reports', { accept: 'text/html', cookie: String(session) });
    expect(page.status).toBe(200);
    const headers = stack.upstream.seen.at(-1)!.headers;
    expect(headers).toMatchObject({
      'x-payload-username': 'tina',
      'x-payload-name': 'Tina Tableau',
      'x-payload-groups': 'All Users,Sales',
      'x-payload-src': 'tableau',
      'x-payload-tableau_site_id': SITE.id,
      'x-payload-tableau_site_role': 'Explorer',
    });
    expect(headers['x-payload-sub']).toBe(`tableau:${SITE.id}:${String(headers['x-payload-tableau_user_id'])}`);
  });

  test('a local user with a wrong password does not fall through to Tableau', async () => {
    const before = tableau.signIns().length;
    const { res, session } = await stack.login('larry', 'not the password');
    expect(res.status).toBe(401);
    expect(session).toBeNull();
    expect(tableau.signIns()).toHaveLength(before);
  });

  test('Tableau down: the login page answers 503 with a clear message, not "invalid password"', async () => {
    tableau.setFault('down');
    try {
      const { res, session } = await stack.login('tina', 'tableau only password 7');
      expect(res.status).toBe(503);
      expect(res.body).toContain('Tableau is not reachable right now');
      expect(res.body).not.toContain('Invalid username or password');
      expect(session).toBeNull();
      expect(stack.authLogs()).toMatch(/"event":"auth_error".*"src":"tableau".*"reason":"source-unavailable"/);
    } finally {
      tableau.setFault('none');
    }
  });
});
