/**
 * Applications (issue 12) on the real stack: the repo's nginx with examples/nginx/two-apps.conf.template
 * added as an operator adds it (finance.localhost and hr.localhost, each its own server and upstream,
 * and hr's /wiki/ a path app), the policy examples/nginx/two-apps-policy.yaml, the real auth service
 * and PostgreSQL. Requests are addressed by Host header, as curl --resolve would send them. Each app
 * is decided by its own section; the default app keeps the top-level rules; an app the policy lacks
 * is refused by `npm run policy -- lint --nginx` and, at request time, with 403 app-unknown.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { hiddenFields, setCookies } from '../support/http.js';
import { accessLogLines, nextAccessLogEntry, sessionCookieAt } from '../support/policy.js';
import { accessLogEntry, stackTest, startStack, type Stack } from '../support/stack.js';
import { signWith } from '../support/tokens.js';

const EXAMPLE_SITE = join(REPO_ROOT, 'examples', 'nginx', 'two-apps.conf.template');
const EXAMPLE_POLICY = join(REPO_ROOT, 'examples', 'nginx', 'two-apps-policy.yaml');

/** The example site with each app's upstream pointed at its own echo server. */
function exampleSite(finance: EchoUpstream, hr: EchoUpstream): string {
  const text = readFileSync(EXAMPLE_SITE, 'utf8');
  const pointed = text
    .replace(/upstream finance_app \{\n {4}server \$\{APP_UPSTREAM\};/, `upstream finance_app {\n    server 127.0.0.1:${finance.port};`)
    .replace(/upstream hr_app \{\n {4}server \$\{APP_UPSTREAM\};/, `upstream hr_app {\n    server 127.0.0.1:${hr.port};`);
  if (pointed === text || pointed.includes('server ${APP_UPSTREAM}')) throw new Error('the example site no longer has the upstreams this test points elsewhere');
  return pointed;
}

// A location that names an app the policy lacks: what a typo looks like when the compile-time check
// was skipped (nginx started with an older policy). The gate must refuse, never fall back.
const PAYROLL_LOCATION = `    location /payroll/ {
        set $gate_app payroll;
        include snippets/protect.conf;
        proxy_pass http://protected_app/;
    }
`;

describe('applications: many apps behind one gateway', () => {
  let stack: Stack;
  let finance: EchoUpstream;
  let hr: EchoUpstream;
  const test = stackTest(() => stack);
  const now = () => Math.floor(Date.now() / 1000);
  // kirk: Federation + Finance; mccoy: Medical only.
  const kirk = () => sessionCookieAt(stack, now(), { groups: ['Federation', 'Finance'] });
  const mccoy = () => sessionCookieAt(stack, now(), { username: 'mccoy', sub: '00000000-0000-4000-8000-000000000002', groups: ['Medical'] });

  beforeAll(async () => {
    finance = await startEchoUpstream();
    hr = await startEchoUpstream();
    stack = await startStack({
      env: { POLICY_FILE: EXAMPLE_POLICY },
      editSite: (site) => site.replace('    include snippets/gate-server.conf;\n', `    include snippets/gate-server.conf;\n${PAYROLL_LOCATION}`) + '\n' + exampleSite(finance, hr),
    });
    await stack.createUser('kirk', 'correct horse battery', { groups: ['Federation', 'Finance'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await finance?.close();
    await hr?.close();
  });
  beforeEach(() => {
    stack.upstream.reset();
    finance.reset();
    hr.reset();
  });

  /** GET (or `method`) on `host` through nginx, with the access-log entry nginx wrote for it. */
  async function send(host: string, method: string, path: string, cookie?: string) {
    const before = accessLogLines(stack.nginx);
    const headers: Record<string, string> = { host: `${host}:${stack.proxyPort}`, accept: 'application/json' };
    if (cookie !== undefined) headers.cookie = cookie;
    const res = await stack.request(method, path, headers);
    // nginx may write the previous request's line after its response went out: skip lines of others.
    for (let at = before; ; at++) {
      const log = await nextAccessLogEntry(stack.nginx, at);
      if (log.path === path && log.method === method && log.status === res.status) return { res, log };
    }
  }

  const seen = () => ({ finance: finance.seen.map((s) => s.url), hr: hr.seen.map((s) => s.url), default: stack.upstream.seen.map((s) => s.url) });

  test('finance.localhost: its own rules and default; only its upstream sees the request', async () => {
    const ok = await send('finance.localhost', 'GET', '/reports/q3', kirk());
    expect(ok.res.status).toBe(200);
    expect(seen()).toEqual({ finance: ['/reports/q3'], hr: [], default: [] });
    expect(finance.seen[0]!.headers['x-payload-username']).toBe('kirk');
    expect(ok.log).toMatchObject({ app: 'finance', rule: 'finance-members', reason: 'session-valid', user: 'kirk' });

    finance.reset();
    // mccoy is not in Finance: the app's default (deny) refuses; the default app's default would allow.
    const refused = await send('finance.localhost', 'GET', '/reports/q3', mccoy());
    expect(refused.res.status).toBe(403);
    expect(JSON.parse(refused.res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
    expect(seen()).toEqual({ finance: [], hr: [], default: [] });
    expect(refused.log).toMatchObject({ app: 'finance', rule: 'default', reason: 'policy-denied', user: 'mccoy' });

    // The app's public rule: no login needed.
    const status = await send('finance.localhost', 'GET', '/status');
    expect(status.res.status).toBe(200);
    expect(status.log).toMatchObject({ app: 'finance', rule: 'finance-status', reason: 'public' });
  });

  test('hr.localhost and its /wiki/ path app: each decided by its own section', async () => {
    expect((await send('hr.localhost', 'GET', '/salaries/2026', kirk())).res.status).toBe(200);
    const salaries = await send('hr.localhost', 'GET', '/salaries/2026', mccoy());
    expect(salaries.res.status).toBe(403);
    expect(salaries.log).toMatchObject({ app: 'hr', rule: 'salaries-others' });
    // The default app's /federation deny rule is not hr's.
    expect((await send('hr.localhost', 'GET', '/federation', mccoy())).res.status).toBe(200);

    const read = await send('hr.localhost', 'GET', '/wiki/Onboarding', mccoy());
    expect(read.res.status).toBe(200);
    expect(read.log).toMatchObject({ app: 'wiki', rule: 'default' });
    const edit = await send('hr.localhost', 'POST', '/wiki/Onboarding', mccoy());
    expect(edit.res.status).toBe(403);
    expect(edit.log).toMatchObject({ app: 'wiki', rule: 'wiki-edit-others', method: 'POST' });
    expect(seen()).toEqual({ finance: [], hr: ['/salaries/2026', '/federation', '/wiki/Onboarding'], default: [] });
  });

  test('the default app (any other host) keeps the top-level rules, whatever the apps say', async () => {
    const fed = await send('localhost', 'GET', '/federation', mccoy());
    expect(fed.res.status).toBe(403);
    expect(fed.log).toMatchObject({ app: '', rule: 'federation-others' });
    // hr's /salaries rule is hr's only; finance's default deny is finance's only.
    const salaries = await send('localhost', 'GET', '/salaries', mccoy());
    expect(salaries.res.status).toBe(200);
    expect(salaries.log).toMatchObject({ app: '', rule: 'default' });
    expect(seen()).toEqual({ finance: [], hr: [], default: ['/salaries'] });
  });

  test('a location naming an app the policy lacks: 403 app-unknown, an error-log line, the upstream sees nothing', async () => {
    const errorsBefore = stack.nginx.errorLog().length;
    const res = await send('localhost', 'GET', '/payroll/run', kirk());
    expect(res.res.status).toBe(403);
    expect(JSON.parse(res.res.body)).toEqual({ error: 'forbidden', reason: 'app-unknown' });
    expect(res.log).toMatchObject({ app: 'payroll', reason: 'app-unknown', rule: '' });
    expect(seen()).toEqual({ finance: [], hr: [], default: [] });
    const errors = stack.nginx.errorLog().slice(errorsBefore);
    expect(errors).toMatch(new RegExp(`\\[error\\].*gate: app-unknown app=payroll request_id=${String(res.log.request_id)}`));
    expect(errors).not.toContain(kirk().split('=')[1]!.slice(0, 40));
    // Anonymous too: refused before any login is offered.
    expect((await send('localhost', 'GET', '/payroll/run')).res.status).toBe(403);
  });

  test('the audit trail records the app a sign-in and a sign-out came through; a client cannot claim one', async () => {
    const host = `finance.localhost:${stack.proxyPort}`;
    const signIn = async (hostHeader: string, extra: Record<string, string> = {}) => {
      const page = await stack.request('GET', '/login', { host: hostHeader, accept: 'text/html', ...extra });
      const csrf = setCookies(page).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='))!;
      const body = new URLSearchParams({ ...hiddenFields(page.body), username: 'kirk', password: 'correct horse battery' }).toString();
      const res = await stack.request(
        'POST',
        '/login',
        { host: hostHeader, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: `http://${hostHeader}`, 'content-length': String(Buffer.byteLength(body)), ...extra },
        body,
      );
      expect(res.status).toBe(302);
      return setCookies(res).map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${stack.cookieName}=`) && c.length > stack.cookieName.length + 1)!;
    };
    const lastLogin = async () => (await stack.pool.query("SELECT app FROM auth_events WHERE event = 'login_success' AND username = 'kirk' ORDER BY id DESC LIMIT 1")).rows[0];

    const session = await signIn(host);
    expect(await lastLogin()).toEqual({ app: 'finance' });
    // An expired token of that session (otherwise valid) on the wiki path app: nginx renews it through
    // @gate_renew, and the renewal is recorded under the app of the location it came from.
    const [header, payload] = session.split('=')[1]!.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const expired = `${stack.cookieName}=${signWith(header, { ...claims, iat: Number(claims.iat) - 300, exp: Math.floor(Date.now() / 1000) - 120 }, stack.secret)}`;
    const renewed = await stack.request('GET', '/wiki/Renewal', { host: `hr.localhost:${stack.proxyPort}`, accept: 'application/json', cookie: expired });
    expect(renewed.status).toBe(200);
    expect(setCookies(renewed).some((c) => c.startsWith(`${stack.cookieName}=`))).toBe(true);
    expect((await stack.pool.query("SELECT app FROM auth_events WHERE event = 'renewal' AND username = 'kirk' ORDER BY id DESC LIMIT 1")).rows).toEqual([{ app: 'wiki' }]);
    // Decided again after the renewal by the wiki's rules (kirk is no Editor), not by hr's (whose
    // default would allow): the renewal's subrequest re-ran the server's `set $gate_app hr;`.
    hr.reset();
    const edit = await stack.request('POST', '/wiki/Renewal', { host: `hr.localhost:${stack.proxyPort}`, accept: 'application/json', cookie: expired, 'content-length': '0' }, '');
    expect(edit.status).toBe(403);
    expect(hr.seen).toEqual([]);
    expect(await accessLogEntry(stack.nginx, (e) => e.method === 'POST' && e.path === '/wiki/Renewal')).toMatchObject({ app: 'wiki', rule: 'wiki-edit-others', status: 403 });
    // Signing out through hr.localhost records hr.
    const out = await stack.request('POST', '/logout', { host: `hr.localhost:${stack.proxyPort}`, cookie: session, origin: `http://hr.localhost:${stack.proxyPort}`, 'content-length': '0' }, '');
    expect([302, 303]).toContain(out.status);
    expect((await stack.pool.query("SELECT app FROM auth_events WHERE event = 'logout' AND username = 'kirk' ORDER BY id DESC LIMIT 1")).rows).toEqual([{ app: 'hr' }]);
    // The default app's host, with a forged X-Gateway-App: nginx strips it, so nothing is recorded.
    await signIn(`localhost:${stack.proxyPort}`, { 'x-gateway-app': 'hr' });
    expect(await lastLogin()).toEqual({ app: null });
  });
});

describe('applications: an unknown app is refused at compile time', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function lint(nginxDir: string, policy: string) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'auth-service', 'src', 'cli', 'policy.ts'), 'lint', '--file', policy, '--nginx', nginxDir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('npm run policy -- lint --nginx accepts the example, and refuses it with an app removed from the policy', () => {
    const nginxDir = mkdtempSync(join(tmpdir(), 'apps-nginx-'));
    dirs.push(nginxDir);
    cpSync(join(REPO_ROOT, 'nginx'), nginxDir, { recursive: true });
    cpSync(EXAMPLE_SITE, join(nginxDir, 'sites', 'two-apps.conf.template'));
    const ok = lint(nginxDir, EXAMPLE_POLICY);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toContain('apps: finance (2 rules, default deny), hr (2 rules, default allow), wiki (2 rules, default allow)');

    const withoutWiki = join(nginxDir, 'policy-without-wiki.yaml');
    const text = readFileSync(EXAMPLE_POLICY, 'utf8');
    writeFileSync(withoutWiki, text.slice(0, text.indexOf('  # hr.localhost/wiki/')));
    const refused = lint(nginxDir, withoutWiki);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error: .*sites\/two-apps\.conf\.template:\d+: set \$gate_app wiki: the policy has no app 'wiki' \(apps: finance, hr\)/);
  }, 60_000);
});
