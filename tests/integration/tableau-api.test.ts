/**
 * The Tableau REST API pass-through (/api/ on the gateway) and /auth/about, through the real nginx
 * and njs: a Tableau user's requests reach Tableau with that user's own token, the token never
 * shows in the cookie or reaches the protected app, Tableau's 401 reaches the client, and logout
 * signs the Tableau session out.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';

/** The JWT payload of a `name=value` session cookie pair, decoded as text (no verification). */
function payloadText(session: string): string {
  const value = session.slice(session.indexOf('=') + 1);
  return Buffer.from(value.split('.')[1]!, 'base64url').toString('utf8');
}

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Tableau /api/ pass-through through nginx', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000bb' };
  const PASSWORD = 'tableau only password 7';

  beforeAll(async () => {
    tableau = await startTableauFake({
      site: SITE,
      users: [
        { name: 'tina', password: PASSWORD, siteRole: 'Explorer', groups: ['Sales'] },
        { name: 'tom', password: PASSWORD, siteRole: 'Viewer', groups: [] },
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

  async function tableauLogin(name: string): Promise<{ session: string; token: string }> {
    const { res, session } = await stack.login(name, PASSWORD);
    expect(res.status).toBe(302);
    expect(session).not.toBeNull();
    return { session: String(session), token: tableau.issuedTokens().at(-1)! };
  }

  test("reaches Tableau with the user's own token, ignoring the client's X-Tableau-Auth", async () => {
    const tina = await tableauLogin('tina');
    const tom = await tableauLogin('tom');
    expect(tableau.liveTokens()).toBe(2);

    for (const user of [tina, tom]) {
      const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks?pageSize=5&filter=name:eq:a%20b`, {
        accept: 'application/json',
        cookie: `${user.session}; other=1`,
        'x-tableau-auth': 'client-chosen-token',
        'x-payload-username': 'mallory',
      });
      expect(res.status).toBe(200);
      const body = JSON.parse(res.body) as { calledWith: { token: string; query: string } };
      expect(body.calledWith.token).toBe(user.token);
      expect(body.calledWith.query).toBe('?pageSize=5&filter=name:eq:a%20b');
      const seen = tableau.requests.at(-1)!;
      expect(seen.url).toBe(`/api/3.19/sites/${SITE.id}/workbooks?pageSize=5&filter=name:eq:a%20b`);
      expect(seen.headers.cookie).toBeUndefined();
      expect(seen.headers['x-payload-username']).toBeUndefined();
      expect(seen.headers.host).toBe(`127.0.0.1:${tableau.port}`);
    }
  });

  test('the cookie does not carry the Tableau token in clear, and the protected app never sees it', async () => {
    const { session, token } = await tableauLogin('tina');
    const payload = payloadText(session);
    expect(payload).toContain('"tta":"');
    for (const part of [token, ...token.split('|')]) expect(payload).not.toContain(part);

    const page = await stack.request('GET', '/reports', { accept: 'text/html', cookie: session });
    expect(page.status).toBe(200);
    const seen = JSON.stringify(stack.upstream.seen.at(-1)!.headers);
    expect(seen).not.toContain(token.split('|')[0]!);
    expect(seen.toLowerCase()).not.toContain('tta');
    expect(seen.toLowerCase()).not.toContain('x-tableau-auth');
  });

  test("Tableau's 401 for an expired token reaches the client as 401", async () => {
    const { session } = await tableauLogin('tina');
    tableau.expireAllTokens();
    const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: session });
    expect(res.status).toBe(401);
    expect(res.body).toContain('401002');
  });

  const refusals: [string, () => Record<string, string>, string][] = [
    ['no session cookie', () => ({ accept: 'application/json' }), 'token-missing'],
    ['a forged session cookie, even from a browser', () => ({ accept: 'text/html', cookie: `${stack.cookieName}=a.b.c` }), 'token-invalid'],
  ];
  for (const [name, headers, reason] of refusals) {
    test(`${name}: /api/ answers 401 JSON and Tableau is not called`, async () => {
      const before = tableau.requests.length;
      const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, headers());
      expect(res.status).toBe(401);
      expect(String(res.headers['content-type'])).toContain('application/json');
      expect(JSON.parse(res.body)).toEqual({ error: 'unauthenticated', reason, login: '/login' });
      expect(tableau.requests.length).toBe(before);
    });
  }

  test('a local user (no Tableau token) gets 401 on /api/ and 404 on /auth/about', async () => {
    const { session } = await stack.login('larry', 'local user password 42');
    const before = tableau.requests.length;
    const api = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: String(session) });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toMatchObject({ reason: 'tableau-session-missing' });
    const about = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: String(session) });
    expect(about.status).toBe(404);
    expect(tableau.requests.length).toBe(before);
  });

  test('/auth/about returns the site and user ids and serverinfo; 401 without a session', async () => {
    const { session } = await tableauLogin('tina');
    const res = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: session });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as { siteId: string; userId: string; serverInfo: { restApiVersion: string } };
    expect(body.siteId).toBe(SITE.id);
    expect(body.userId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.serverInfo.restApiVersion).toBe('3.19');
    expect(res.body).not.toContain(tableau.issuedTokens().at(-1)!);

    const anonymous = await stack.request('GET', '/auth/about', { accept: 'application/json' });
    expect(anonymous.status).toBe(401);
  });

  test('logout signs the Tableau session out with its token', async () => {
    const { session, token } = await tableauLogin('tina');
    const res = await stack.request('POST', '/logout', { cookie: session, origin: stack.baseUrl, 'content-length': '0' }, '');
    expect(res.status).toBe(303);
    await waitFor(() => tableau.signedOutTokens().includes(token));
    expect(stack.authLogs()).not.toContain(token);
  });

  test("the client's own Authorization and path/method/host claims never reach Tableau", async () => {
    const tina = await tableauLogin('tina');
    const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, {
      accept: 'application/json',
      cookie: tina.session,
      authorization: 'Basic bWFsbG9yeTpzZWNyZXQ=',
      'proxy-authorization': 'Basic bWFsbG9yeTpzZWNyZXQ=',
      'x-original-url': `/api/3.19/sites/${SITE.id}/users`,
      'x-http-method-override': 'DELETE',
      'x-forwarded-host': 'evil.example',
      forwarded: 'host=evil.example',
    });
    expect(res.status).toBe(200);
    const seen = tableau.requests.at(-1)!;
    for (const name of ['authorization', 'proxy-authorization', 'x-original-url', 'x-http-method-override', 'x-forwarded-host', 'forwarded']) {
      expect([name, seen.headers[name]]).toEqual([name, undefined]);
    }
    expect(seen.headers['x-tableau-auth']).toBe(tina.token);
  });

  test('Tableau receives the path the gate judged (normalised), not the raw one; the query stays raw', async () => {
    const tina = await tableauLogin('tina');
    const raw = `/api/3.19/sites/x/..//${SITE.id}/workbooks;jsessionid=abc?pageSize=5&filter=name:eq:a%20b`;
    const res = await stack.request('GET', raw, { accept: 'application/json', cookie: tina.session });
    expect(res.status).toBe(200);
    expect(tableau.requests.at(-1)!.url).toBe(`/api/3.19/sites/${SITE.id}/workbooks?pageSize=5&filter=name:eq:a%20b`);
  });

  test('an ambiguous path is refused with 400 JSON and never reaches Tableau', async () => {
    const tina = await tableauLogin('tina');
    const before = tableau.requests.length;
    const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks%5c..`, { accept: 'application/json', cookie: tina.session });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad-request', reason: 'path-ambiguous' });
    expect(tableau.requests.length).toBe(before);
  });

  const publish = (session: string, headers: Record<string, string>, bytes = 1024) =>
    stack.request(
      'POST',
      `/api/3.19/sites/${SITE.id}/workbooks`,
      { accept: 'application/json', cookie: session, 'content-type': 'multipart/mixed; boundary=b', ...headers },
      Buffer.alloc(bytes, 0x61),
    );

  const crossSite: Array<[string, Record<string, string>]> = [
    ['a cross-site form post (Sec-Fetch-Site: cross-site)', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }],
    ['a sibling subdomain (Sec-Fetch-Site: same-site)', { 'sec-fetch-site': 'same-site', origin: 'http://app.127.0.0.1.nip.io' }],
    ['another Origin, no Fetch Metadata (older browser)', { origin: 'https://evil.example' }],
    ['Origin: null (sandboxed frame)', { origin: 'null' }],
    ['neither Origin nor Sec-Fetch-Site', {}],
  ];
  for (const [name, headers] of crossSite) {
    test(`CSRF: ${name} is refused with 403 JSON before Tableau is called`, async () => {
      const tina = await tableauLogin('tina');
      const before = tableau.requests.length;
      const res = await publish(tina.session, headers);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'forbidden', reason: 'cross-site-request' });
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(tableau.requests.length).toBe(before);
    });
  }

  test('CSRF: a same-origin publish passes (Origin ours, or Sec-Fetch-Site: same-origin); a cross-site GET is safe and passes', async () => {
    const tina = await tableauLogin('tina');
    expect((await publish(tina.session, { origin: stack.baseUrl })).status).toBe(201);
    expect((await publish(tina.session, { 'sec-fetch-site': 'same-origin' })).status).toBe(201);
    const get = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: tina.session, 'sec-fetch-site': 'cross-site' });
    expect(get.status).toBe(200);
  });

  test('a publish larger than the old 10 MiB limit reaches Tableau whole (default TABLEAU_API_MAX_BODY_MB 64)', async () => {
    const tina = await tableauLogin('tina');
    const res = await publish(tina.session, { origin: stack.baseUrl }, 12 * 1024 * 1024);
    expect(res.status).toBe(201);
    expect(tableau.requests.at(-1)!.bodyBytes).toBe(12 * 1024 * 1024);
  });

  test('Tableau unreachable: 502 JSON for an API client, the branded page for a browser', async () => {
    const tina = await tableauLogin('tina');
    tableau.setFault('down');
    try {
      const api = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: tina.session });
      expect(api.status).toBe(502);
      expect(String(api.headers['content-type'])).toContain('application/json');
      expect(JSON.parse(api.body)).toEqual({ error: 'tableau-unavailable', reason: 'upstream-unreachable' });
      const page = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'text/html', cookie: tina.session });
      expect(page.status).toBe(502);
      expect(page.body).toContain('<html');
    } finally {
      tableau.setFault('none');
    }
  });
});

describe('/api/ without Tableau configured', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack();
    await stack.createUser('larry', 'local user password 42');
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test("stays the protected app's: a signed-in user reaches it with identity headers", async () => {
    const { session } = await stack.login('larry', 'local user password 42');
    const res = await stack.request('GET', '/api/things?x=1', { accept: 'application/json', cookie: String(session) });
    expect(res.status).toBe(200);
    const seen = stack.upstream.seen.at(-1)!;
    expect(seen.url).toBe('/api/things?x=1');
    expect(seen.headers['x-payload-username']).toBe('larry');
  });

  test('and is refused by the gate without a session, the app seeing nothing', async () => {
    const before = stack.upstream.seen.length;
    const res = await stack.request('GET', '/api/things', { accept: 'application/json' });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason: 'token-missing' });
    expect(stack.upstream.seen.length).toBe(before);
  });
});

describe('/api/ limits: TABLEAU_API_TIMEOUT_SECONDS and TABLEAU_API_MAX_BODY_MB', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: '', id: '0b1c2d3e-0000-4000-8000-0000000000cc' };
  const PASSWORD = 'tableau only password 8';

  beforeAll(async () => {
    tableau = await startTableauFake({ site: SITE, users: [{ name: 'tina', password: PASSWORD, siteRole: 'Creator', groups: [] }] });
    stack = await startStack({
      env: { TABLEAU_URL: tableau.url, ALLOW_INSECURE_HTTP_IDP: 'true', TABLEAU_TIMEOUT_MS: '1000' },
      nginxVars: { TABLEAU_API_TIMEOUT_SECONDS: '1', TABLEAU_API_MAX_BODY_MB: '1' },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  const post = (session: string, bytes: number, extra: Record<string, string> = {}) =>
    stack.request(
      'POST',
      `/api/3.19/sites/${SITE.id}/workbooks`,
      { accept: 'application/json', cookie: session, origin: stack.baseUrl, 'content-type': 'multipart/mixed; boundary=b', ...extra },
      Buffer.alloc(bytes, 0x61),
    );

  test('a body over the limit gets 413 JSON naming the limit, and Tableau sees nothing; one under it passes', async () => {
    const { session } = await stack.login('tina', PASSWORD);
    const before = tableau.requests.length;
    const big = await post(String(session), 1024 * 1024 + 1);
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toEqual({ error: 'payload-too-large', maxBodyMegabytes: 1 });
    expect(tableau.requests.length).toBe(before);
    expect((await post(String(session), 1024 * 1024 - 1)).status).toBe(201);
  });

  test('Tableau slower than the timeout: 504 JSON after about that long, not after 60 s', async () => {
    const { session } = await stack.login('tina', PASSWORD);
    tableau.setFault('slow');
    try {
      const started = Date.now();
      const res = await stack.request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: String(session) });
      const took = Date.now() - started;
      expect(res.status).toBe(504);
      expect(JSON.parse(res.body)).toEqual({ error: 'tableau-unavailable', reason: 'upstream-timeout', timeoutSeconds: 1 });
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(5000);
    } finally {
      tableau.setFault('none');
    }
  });
});
