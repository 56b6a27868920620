/**
 * Silent renewal through the real stack (issue 9): the repo's nginx with snippets/protect.conf and
 * @gate_renew, the auth service, PostgreSQL. Session tokens live 2 s here (leeway 0), so every test
 * waits for its token to expire rather than forging an expired one: the renewal sees what a
 * returning user's browser sends.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { Readable } from 'node:stream';
import { runSessionsCli } from '../../auth-service/src/cli/sessions-cli.js';
import { runUsersCli } from '../../auth-service/src/cli/users-cli.js';
import { setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';
import { signWith } from '../support/tokens.js';

const PASSWORD = 'renewal test password 42';
const TOKEN_TTL = 2;
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

interface Claims {
  sid: string;
  iat: number;
  exp: number;
  username: string;
}

function claimsOf(session: string): Claims {
  return JSON.parse(Buffer.from(session.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8')) as Claims;
}

/** Waits until the gate (whole seconds, leeway 0) sees the token as expired. */
async function untilExpired(session: string): Promise<void> {
  const wait = (claimsOf(session).exp + 1) * 1000 + 50 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** The session cookie pair a response sets (name=value), or null. */
function renewedCookie(res: HttpResult, name: string): string | null {
  const line = setCookies(res).find((c) => c.startsWith(name + '='));
  return line === undefined ? null : line.split(';')[0]!;
}

async function cli(run: typeof runSessionsCli, argv: string[], databaseUrl: string): Promise<number> {
  const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: { DATABASE_URL: databaseUrl } };
  return run(argv, io);
}
const usersCli = (argv: string[], url: string) => cli((a, io) => runUsersCli(a, { ...io, stdin: Readable.from([]) }), argv, url);

describe('silent renewal through nginx', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({
      cuttableStore: true,
      env: { SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL), SESSION_LEEWAY_SECONDS: '0' },
      // An operator's location whose upstream is down: after a renewal its 502 must still be the
      // branded page (recursive_error_pages in protect.conf).
      editSite: (t) => t.replace('    location / {', '    location /down/ {\n        include snippets/protect.conf;\n        proxy_pass http://127.0.0.1:9/;\n    }\n\n    location / {'),
    });
    for (const name of ['kirk', 'spock', 'uhura', 'sulu', 'chekov', 'scotty', 'mccoy']) await stack.createUser(name, PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  async function events(sid: string): Promise<string[]> {
    return (await stack.pool.query<{ event: string }>('SELECT event FROM auth_events WHERE sid = $1 ORDER BY id', [sid])).rows.map((r) => r.event);
  }
  async function signIn(name: string): Promise<string> {
    const { session } = await stack.login(name, PASSWORD, '/');
    expect(session).not.toBeNull();
    return session!;
  }
  /** The last request the app received. */
  const lastSeen = () => stack.upstream.seen.at(-1)!;

  test('a browser navigation with an expired token is renewed in place: the page, a new cookie, one auth-service call per token lifetime', async () => {
    const session = await signIn('kirk');
    const before = claimsOf(session);
    expect(before.exp - before.iat).toBe(TOKEN_TTL);
    await untilExpired(session);
    stack.upstream.reset();
    const page = await stack.request('GET', '/reports/q3?year=2026&x=%C3%A9', { accept: BROWSER, cookie: `theme=dark; ${session}` });
    expect(page.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    expect(lastSeen()).toMatchObject({ method: 'GET', url: '/reports/q3?year=2026&x=%C3%A9' });
    expect(lastSeen().headers).toMatchObject({ 'x-payload-username': 'kirk', 'x-payload-sid': before.sid, cookie: 'theme=dark' });
    const line = setCookies(page).find((c) => c.startsWith('gw_session='))!;
    // The cookie outlives the token: it runs to the session's absolute end (SESSION_MAX_SECONDS, 12 h).
    expect(line).toMatch(/^gw_session=[\w-]+\.[\w-]+\.[\w-]{43}; HttpOnly; SameSite=Lax; Path=\/; Max-Age=4319\d$/);
    const renewed = renewedCookie(page, 'gw_session')!;
    const after = claimsOf(renewed);
    expect(after).toMatchObject({ sid: before.sid, iat: before.iat, username: 'kirk' });
    expect(after.exp).toBeGreaterThan(before.exp);
    expect(await events(before.sid)).toEqual(['login_success', 'renewal']);

    // With the new token: no call to the auth service, no new cookie.
    const again = await stack.request('GET', '/reports/q4', { accept: BROWSER, cookie: renewed });
    expect(again.status).toBe(200);
    expect(renewedCookie(again, 'gw_session')).toBeNull();
    expect(await events(before.sid)).toEqual(['login_success', 'renewal']);
    const log = stack.nginx.accessLog().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.filter((l) => l.path === '/reports/q3')).toEqual([expect.objectContaining({ status: 200, user: 'kirk', reason: 'session-renewed' })]);
  });

  test('parallel requests with the same expired token (a dashboard loading) share one renewal: one auth-service call, one new token', async () => {
    const session = await signIn('kirk');
    const { sid } = claimsOf(session);
    await untilExpired(session);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => stack.request('GET', `/api/widgets/${i}`, { accept: 'application/json', cookie: session })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const tokens = new Set(results.map((r) => renewedCookie(r, 'gw_session')));
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).not.toBeNull();
    expect(await events(sid)).toEqual(['login_success', 'renewal']);
    // Another session's expired token is never answered from that entry.
    const other = await signIn('spock');
    await untilExpired(other);
    const res = await stack.request('GET', '/api/widgets/x', { accept: 'application/json', cookie: other });
    expect(claimsOf(renewedCookie(res, 'gw_session')!)).toMatchObject({ sid: claimsOf(other).sid, username: 'spock' });
  });

  test('a fetch/XHR call with an expired token is renewed in place (JSON, no redirect)', async () => {
    const session = await signIn('spock');
    await untilExpired(session);
    const res = await stack.request('GET', '/api/v1/items?page=2', { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest', cookie: session });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: '/api/v1/items?page=2', headers: { 'x-payload-username': 'spock' } });
    expect(renewedCookie(res, 'gw_session')).not.toBeNull();
  });

  test('a form POST and a large PUT with an expired token reach the app with method and body intact', async () => {
    let session = await signIn('uhura');
    await untilExpired(session);
    const form = 'comment=' + encodeURIComponent('Zoë says: 100% & more') + '&id=42';
    stack.upstream.reset();
    const posted = await stack.request(
      'POST',
      '/forms/submit',
      { accept: BROWSER, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(form)), cookie: session, origin: stack.baseUrl },
      form,
    );
    expect(posted.status).toBe(200);
    expect(lastSeen()).toMatchObject({ method: 'POST', url: '/forms/submit' });
    expect(lastSeen().body.toString('utf8')).toBe(form);
    session = renewedCookie(posted, 'gw_session')!;

    // 600 KB: past nginx's in-memory body buffer, so the body waits in a temporary file meanwhile.
    await untilExpired(session);
    const big = Buffer.from(JSON.stringify({ rows: Array.from({ length: 12_000 }, (_, i) => ({ i, name: `row ${i} — ünïcödé` })) }));
    expect(big.length).toBeGreaterThan(500_000);
    expect(big.length).toBeLessThan(1_000_000);
    const put = await stack.request('PUT', '/data/set', { accept: 'application/json', 'content-type': 'application/json', 'content-length': String(big.length), cookie: session }, big);
    expect(put.status).toBe(200);
    expect(lastSeen().method).toBe('PUT');
    expect(lastSeen().body.equals(big)).toBe(true);
  });

  test("a path whose decoded form holds '?' (%3F) gets a 307 to itself with the new cookie, then passes", async () => {
    const session = await signIn('sulu');
    await untilExpired(session);
    const res = await stack.request('GET', '/files/what%3Fnow?v=1', { accept: BROWSER, cookie: session });
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe('/files/what%3Fnow?v=1');
    const renewed = renewedCookie(res, 'gw_session')!;
    expect(claimsOf(renewed).sid).toBe(claimsOf(session).sid);
    stack.upstream.reset();
    const follow = await stack.request('GET', '/files/what%3Fnow?v=1', { accept: BROWSER, cookie: renewed });
    expect(follow.status).toBe(200);
    expect(lastSeen().url).toBe('/files/what%3Fnow?v=1');
  });

  test("after a renewal, an upstream failure is still the gateway's branded page, with the new cookie", async () => {
    const session = await signIn('chekov');
    await untilExpired(session);
    const res = await stack.request('GET', '/down/x', { accept: BROWSER, cookie: session });
    expect(res.status).toBe(502);
    expect(res.body).toContain('<title>Application unavailable');
    expect(renewedCookie(res, 'gw_session')).not.toBeNull();
  });

  test('revocation stops access within one token lifetime: a copied cookie passes until it expires, then the browser lands on the login page and an API client gets 401', async () => {
    const session = await signIn('scotty');
    const { sid } = claimsOf(session);
    expect(await cli(runSessionsCli, ['revoke', sid], stack.databaseUrl)).toBe(0);
    const revokedAt = Date.now();
    // The bound: the token is still within its lifetime.
    expect((await stack.request('GET', '/', { accept: BROWSER, cookie: session })).status).toBe(200);
    await untilExpired(session);
    expect(Date.now() - revokedAt).toBeLessThan((TOKEN_TTL + 2) * 1000);
    const page = await stack.request('GET', '/reports?q=1', { accept: BROWSER, cookie: session });
    expect(page.status).toBe(302);
    expect(page.headers.location).toBe('/login?rd=%2Freports%3Fq%3D1');
    expect(setCookies(page)).toContainEqual(expect.stringMatching(/^gw_session=; .*Max-Age=0/));
    const api = await stack.request('GET', '/api/x', { accept: 'application/json', cookie: session });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toEqual({ error: 'unauthenticated', reason: 'session-ended', login: '/login' });
    // One refusal in the store: nginx keeps the refusal of that token for 5 s (a retry loop is cheap).
    expect(await events(sid)).toEqual(['login_success', 'revoke', 'renewal_refused']);
  });

  test('users disable ends access within one token lifetime', async () => {
    const session = await signIn('mccoy');
    expect(await usersCli(['disable', 'mccoy'], stack.databaseUrl)).toBe(0);
    await untilExpired(session);
    const api = await stack.request('POST', '/api/x', { accept: 'application/json', cookie: session, 'content-length': '2', 'content-type': 'application/json' }, '{}');
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toMatchObject({ reason: 'session-ended' });
  });

  test('idle and absolute expiry end the session at its next renewal', async () => {
    const idle = await signIn('kirk');
    const absolute = await signIn('kirk');
    // Time moves in the store instead of the test waiting an hour (SESSION_IDLE_SECONDS) or 12 h.
    await stack.pool.query("UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE sid = $1", [claimsOf(idle).sid]);
    await stack.pool.query("UPDATE sessions SET expires_at = now() - interval '1 second', idle_expires_at = now() - interval '1 second' WHERE sid = $1", [claimsOf(absolute).sid]);
    await untilExpired(absolute);
    const a = await stack.request('GET', '/x', { accept: 'application/json', cookie: idle });
    expect(JSON.parse(a.body)).toMatchObject({ reason: 'session-idle' });
    const b = await stack.request('GET', '/x', { accept: 'application/json', cookie: absolute });
    expect(JSON.parse(b.body)).toMatchObject({ reason: 'session-expired' });
    const rows = await stack.pool.query<{ sid: string; revoked: boolean }>('SELECT sid, revoked_at IS NOT NULL AS revoked FROM sessions WHERE sid = ANY($1)', [[claimsOf(idle).sid, claimsOf(absolute).sid]]);
    expect(rows.rows.every((r) => r.revoked)).toBe(true);
  });

  test('auth service down: valid tokens keep working; an expired one fails closed (branded 503 page, 401 JSON); back up, it renews', async () => {
    const session = await signIn('spock');
    // A token of the same session that is still valid for a while (what a user who signed in a
    // minute ago holds), signed as the service signs.
    const [header, payload] = session.split('=')[1]!.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, number>;
    const fresh = `gw_session=${signWith(header, { ...claims, exp: Math.floor(Date.now() / 1000) + 120 }, stack.secret)}`;
    await stack.stopAuthService();
    try {
      expect((await stack.request('GET', '/still/works', { accept: BROWSER, cookie: fresh })).status).toBe(200);
      await untilExpired(session);
      const page = await stack.request('GET', '/reports', { accept: BROWSER, cookie: session });
      expect(page.status).toBe(503);
      // The sign-in service's page: the app itself is fine.
      expect(page.body).toContain('<title>Sign-in unavailable');
      const api = await stack.request('GET', '/api/x', { accept: 'application/json', cookie: session });
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body)).toEqual({ error: 'unauthenticated', reason: 'renewal-unavailable', login: '/login' });
      // The cookie is kept: the session is not over, only its renewal waits.
      expect(renewedCookie(api, 'gw_session')).toBeNull();
    } finally {
      await stack.restartAuthService({});
    }
    const back = await stack.request('GET', '/reports', { accept: BROWSER, cookie: session });
    expect(back.status).toBe(200);
    expect(renewedCookie(back, 'gw_session')).not.toBeNull();
  });

  test('database down during renewal: fails closed the same way, and the session is not ended', async () => {
    const session = await signIn('uhura');
    const { sid } = claimsOf(session);
    await untilExpired(session);
    await stack.dbRelay!.cut();
    try {
      const api = await stack.request('GET', '/api/x', { accept: 'application/json', cookie: session });
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body)).toMatchObject({ reason: 'renewal-unavailable' });
      const page = await stack.request('GET', '/reports', { accept: BROWSER, cookie: session });
      expect(page.status).toBe(503);
    } finally {
      await stack.dbRelay!.restore();
    }
    const back = await stack.request('GET', '/reports', { accept: BROWSER, cookie: session });
    expect(back.status).toBe(200);
    expect((await stack.pool.query('SELECT revoked_at FROM sessions WHERE sid = $1', [sid])).rows[0]).toEqual({ revoked_at: null });
  });
});

describe('silent renewal on the Tableau /api/ pass-through', () => {
  let stack: Stack;
  let tableau: TableauFake;
  const test = stackTest(() => stack);
  const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000cc' };

  beforeAll(async () => {
    tableau = await startTableauFake({ site: SITE, users: [{ name: 'tina', password: PASSWORD, siteRole: 'Explorer', groups: ['Sales'] }] });
    stack = await startStack({
      env: { TABLEAU_URL: tableau.url, TABLEAU_SITE: SITE.contentUrl, ALLOW_INSECURE_HTTP_IDP: 'true', SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL), SESSION_LEEWAY_SECONDS: '0' },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await tableau?.close();
  });

  test("an expired session token is renewed in place and the call reaches Tableau with the user's token", async () => {
    const { session } = await stack.login('tina', PASSWORD);
    const tinaToken = tableau.issuedTokens().at(-1)!;
    await untilExpired(session!);
    const body = JSON.stringify({ workbook: { name: 'Q3 — ünïcödé' } });
    const res = await stack.request(
      'POST',
      `/api/3.19/sites/${SITE.id}/workbooks`,
      { accept: 'application/json', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), origin: stack.baseUrl, cookie: session! },
      body,
    );
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body)).toMatchObject({ calledWith: { bodyBytes: Buffer.byteLength(body) } });
    expect(tableau.requests.at(-1)).toMatchObject({ method: 'POST', headers: { 'x-tableau-auth': tinaToken } });
    const renewed = renewedCookie(res, 'gw_session')!;
    expect(claimsOf(renewed).sid).toBe(claimsOf(session!).sid);
  });

  test('/auth/about (proxied without the gate) renews an expired session token itself', async () => {
    const { session } = await stack.login('tina', PASSWORD);
    await untilExpired(session!);
    const res = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: session! });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ siteId: SITE.id });
    expect(claimsOf(renewedCookie(res, 'gw_session')!).sid).toBe(claimsOf(session!).sid);
    // A forged expired token is not renewed.
    const [h, p] = session!.split('=')[1]!.split('.') as [string, string];
    const forged = await stack.request('GET', '/auth/about', { accept: 'application/json', cookie: `gw_session=${h}.${p}.${'A'.repeat(43)}` });
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.body)).toMatchObject({ reason: 'token-invalid' });
  });
});
