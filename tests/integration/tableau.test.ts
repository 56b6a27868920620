/**
 * Tableau as the second identity source, through the real nginx gate: a Tableau-only user signs in
 * with the form and reaches the upstream with Tableau's claims; a local user's wrong password and an
 * unknown username both ask Tableau (the former with a decoy password), so neither status nor timing
 * tells which local accounts exist; a Tableau that is down gives a clear 503, not "wrong password".
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
      users: [
        { name: 'tina', password: 'tableau only password 7', fullName: 'Tina Tableau', email: 'tina@example.com', siteRole: 'Explorer', groups: ['All Users', 'Sales'] },
        // Also a local user: the local account shadows this one.
        { name: 'larry', password: 'larry tableau password 9', siteRole: 'Viewer', groups: ['All Users'] },
      ],
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

  // Issue 8: a wrong local password used to stop at the local store while an unknown username went
  // on to Tableau, so the unknown one was slower and, with Tableau down, answered 503 instead of 401.
  test('a local user with a wrong password is asked of Tableau too (with a decoy), like an unknown username', async () => {
    const before = tableau.signIns().length;
    const known = await stack.login('larry', 'not the password');
    expect(known.res.status).toBe(401);
    expect(known.session).toBeNull();
    expect(tableau.signIns()).toHaveLength(before + 1);
    // larry's Tableau password is not sent to Tableau for the local larry: no Tableau session opens.
    const live = tableau.liveTokens();
    const tableauPassword = await stack.login('larry', 'larry tableau password 9');
    expect(tableauPassword.res.status).toBe(401);
    expect(tableau.signIns()).toHaveLength(before + 2);
    expect(tableau.liveTokens()).toBe(live);
    const unknown = await stack.login('nobody-here', 'not the password');
    expect(unknown.res.status).toBe(401);
    expect(tableau.signIns()).toHaveLength(before + 3);
    expect(known.res.body.replace(/name="csrf" value="[^"]*"|value="(larry|nobody-here)"/g, '')).toBe(
      unknown.res.body.replace(/name="csrf" value="[^"]*"|value="(larry|nobody-here)"/g, ''),
    );
  });

  test('Tableau down: a local user with a wrong password gets the same 503 as an unknown username', async () => {
    tableau.setFault('down');
    try {
      const known = await stack.login('larry', 'not the password');
      const unknown = await stack.login('nobody-here', 'not the password');
      expect(known.res.status).toBe(503);
      expect(unknown.res.status).toBe(503);
      const withoutRequestId = (body: string) => body.replace(/<code>[0-9a-f]{32}<\/code>/, '');
      expect(withoutRequestId(known.res.body)).toBe(withoutRequestId(unknown.res.body));
      // The right local password does not need Tableau.
      expect((await stack.login('larry', 'local user password 42')).res.status).toBe(302);
    } finally {
      tableau.setFault('none');
    }
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
