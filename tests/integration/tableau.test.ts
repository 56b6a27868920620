/**
 * Tableau as the second identity source, through the real nginx gate: a Tableau-only user signs in
 * with the form and reaches the upstream with Tableau's claims; a local user's wrong password and an
 * unknown username both ask Tableau (the former with a decoy), so neither status nor timing tells
 * which local accounts exist; a Tableau that is down gives a clear 503, not "wrong password"; no
 * failure after Tableau accepted the password leaves its session alive; a server whose REST API
 * version does not fit says so; /auth/about checks the user's own Tableau token.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

describe('Tableau sign-in through nginx', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000aa' };
  // A big customer's user: 1,000 groups (more than one page at Tableau's default page size of 100),
  // long names with non-ASCII letters and a comma-free punctuation mix.
  const THOUSAND_GROUPS = Array.from({ length: 1000 }, (_, i) => `Überregionale Ärzte-Fachgruppe Zürich–東京 Projekt Nr. ${String(i).padStart(4, '0')}`);
  // Just under the token's group budget (MAX_TOKEN_GROUP_BYTES): all of them are carried.
  const NEAR_LIMIT_GROUPS = Array.from({ length: 48 }, (_, i) => `Équipe analytique ${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    tableau = await startTableauFake({
      site: SITE,
      users: [
        { name: 'tina', password: 'tableau only password 7', fullName: 'Tina Tableau', email: 'tina@example.com', siteRole: 'Explorer', groups: ['All Users', 'Sales'] },
        { name: 'gina', password: 'tableau only password 8', fullName: 'Gina Gruppen', siteRole: 'Viewer', groups: THOUSAND_GROUPS },
        { name: 'nina', password: 'tableau only password 9', fullName: 'Nina Nah', siteRole: 'Viewer', groups: NEAR_LIMIT_GROUPS },
        // Also a local user: the local account shadows this one.
        { name: 'larry', password: 'larry tableau password 9', siteRole: 'Viewer', groups: ['All Users'] },
      ],
    });
    stack = await startStack({
      env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000', PAYLOAD_GROUPS: '*' },
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

  async function signInAgain(username: string, password: string, previousSession: string) {
    const form = await stack.loginForm();
    const body = new URLSearchParams({ ...form.fields, username, password }).toString();
    return stack.request(
      'POST',
      '/login',
      {
        accept: 'text/html',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `${form.csrfCookie}; ${previousSession}`,
        origin: stack.baseUrl,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    );
  }

  const FAILURES_AFTER_SIGN_IN = [
    ['groups-500', 'Get Groups for a User fails'],
    ['user-malformed', 'Query User On Site answers a user without a name'],
    ['signin-malformed', 'the sign-in answers a token without a user id'],
  ] as const;
  for (const [fault, what] of FAILURES_AFTER_SIGN_IN) {
  test(`${what}: 503, and the Tableau token is signed out, not left alive for 240 minutes`, async () => {
    const issuedBefore = tableau.issuedTokens().length;
    tableau.setFault(fault);
    try {
      const { res, session } = await stack.login('tina', 'tableau only password 7');
      expect(res.status).toBe(503);
      expect(res.body).toContain('Tableau is not reachable right now');
      expect(session).toBeNull();
    } finally {
      tableau.setFault('none');
    }
    const issued = tableau.issuedTokens().slice(issuedBefore);
    expect(issued).toHaveLength(1);
    expect(tableau.signedOutTokens()).toContain(issued[0]);
    expect(tableau.isLive(issued[0]!)).toBe(false);
  });
  }

  test('a user in 1,000 groups: all are read (one page of 1,000) and the session stays small, saying how many groups were left out', async () => {
    const { res, session } = await stack.login('gina', 'tableau only password 8', '/reports');
    expect(res.status).toBe(302);
    expect(String(session).length).toBeLessThan(2800);
    const groupPages = tableau.requests.filter((r) => r.url.includes('/groups?'));
    expect(groupPages.at(-1)!.url).toMatch(/pageSize=1000&pageNumber=1$/);
    const page = await stack.request('GET', '/reports', { accept: 'text/html', cookie: String(session) });
    expect(page.status).toBe(200);
    const headers = stack.upstream.seen.at(-1)!.headers;
    expect(headers['x-payload-groups_count']).toBe('1000');
    expect(String(headers['x-payload-groups']).split(',').length).toBeLessThan(1000);
    expect(stack.authLogs()).toMatch(/"event":"auth_success","user":"gina".*"groups":1000/);
  });

  test('a session with as many groups as the budget holds passes nginx and reaches the upstream, non-ASCII group names intact', async () => {
    const { res, session } = await stack.login('nina', 'tableau only password 9', '/reports');
    expect(res.status).toBe(302);
    expect(String(session).length).toBeLessThanOrEqual(4096);
    const page = await stack.request('GET', '/reports', { accept: 'text/html', cookie: String(session) });
    expect(page.status).toBe(200);
    const payload = JSON.parse(Buffer.from(String(session).split('.')[1]!, 'base64url').toString('utf8')) as { groups: string[] };
    expect(payload.groups).toEqual(NEAR_LIMIT_GROUPS);
  });

  test("signing in again signs the previous session's Tableau token out", async () => {
    const first = await stack.login('tina', 'tableau only password 7');
    expect(first.session).not.toBeNull();
    const oldToken = tableau.issuedTokens().at(-1)!;
    const again = await signInAgain('tina', 'tableau only password 7', String(first.session));
    expect(again.status).toBe(302);
    const newToken = tableau.issuedTokens().at(-1)!;
    expect(newToken).not.toBe(oldToken);
    await waitFor(() => !tableau.isLive(oldToken));
    expect(tableau.signedOutTokens()).toContain(oldToken);
    expect(tableau.isLive(newToken)).toBe(true);
  });

  test('/auth/about answers 401 once Tableau has expired the token, and 503 when Tableau cannot be asked', async () => {
    const { session } = await stack.login('tina', 'tableau only password 7');
    const ok = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: String(session) });
    expect(ok.status).toBe(200);
    const checked = tableau.requests.filter((r) => r.url.endsWith('/sessions/current')).at(-1)!;
    expect(checked.headers['x-tableau-auth']).toBe(tableau.issuedTokens().at(-1));

    tableau.setFault('sessions-down');
    try {
      const down = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: String(session) });
      expect(down.status).toBe(503);
      expect(JSON.parse(down.body)).toEqual({ error: 'tableau-unavailable' });
    } finally {
      tableau.setFault('none');
    }

    tableau.expireAllTokens();
    const expired = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: String(session) });
    expect(expired.status).toBe(401);
    expect(JSON.parse(expired.body)).toMatchObject({ error: 'unauthenticated', reason: 'tableau-session-expired' });
  });

  test('a server that retires REST API 2.x still works; one too old for 3.7 says it cannot work, not "not reachable"', async () => {
    // Start-up detected 3.19 at /api/2.4/serverinfo and said so.
    expect(stack.authLogs()).toMatch(/"event":"tableau_ready".*"api_version":"3.19"/);
    try {
      // Downgraded to a server that refuses 2.x and speaks at most 3.6: the cached 3.19 is refused at
      // sign-in, and the next detection finds nothing this gateway can use.
      tableau.setApiVersions({ oldest: '3.0', newest: '3.6' });
      for (let attempt = 0; attempt < 2; attempt++) {
        const { res } = await stack.login('tina', 'tableau only password 7');
        expect(res.status).toBe(503);
        expect(res.body).toContain('not set up correctly');
        expect(res.body).toContain('trying again will not help');
        expect(res.body).not.toContain('Tableau is not reachable right now');
      }
      expect(stack.authLogs()).toMatch(/"event":"tableau_setup_required".*upgrade to Tableau Server 2020.1/);

      // Upgraded, 2.x still retired: detection falls back to serverinfo at 3.7, and sign-in works.
      tableau.setApiVersions({ oldest: '3.0', newest: '3.21' });
      const { res, session } = await stack.login('tina', 'tableau only password 7');
      expect(res.status).toBe(302);
      expect(session).not.toBeNull();
      expect(tableau.requests.filter((r) => r.url.endsWith('/serverinfo')).slice(-2).map((r) => r.apiVersion)).toEqual(['2.4', '3.7']);
      expect(tableau.signIns().at(-1)!.apiVersion).toBe('3.21');
    } finally {
      // 3.21 stays cached in the service; the fake keeps speaking it.
      tableau.setApiVersions({ oldest: '2.0', newest: '3.21' });
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
