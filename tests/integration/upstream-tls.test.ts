/**
 * HTTPS upstreams (issue 12) on the real stack, with throwaway openssl CAs:
 * - APP_UPSTREAM=https://localhost:<port> with UPSTREAM_CA_FILE: a certificate from that CA passes,
 *   the app sees the identity headers (never the session cookie) and the SNI name, and a new
 *   connection resumes the TLS session;
 * - a certificate from another CA, or from the right CA for another name, gets the branded 502 and
 *   the app sees nothing: no request, so no identity;
 * - Tableau over https with TABLEAU_CA_FILE: the auth service's REST sign-in and nginx's /api/
 *   pass-through both trust that CA, and nothing else: a certificate from another CA gets no
 *   password (sign-in) and no API request (502 JSON).
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { sessionCookieAt } from '../support/policy.js';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';
import { startTableauFake, type TableauFake } from '../support/tableau-fake.js';
import { issueServerCert, makeTestCa, type TestCa } from '../support/tls.js';

const password = 'correct horse battery staple';
let dir: string;
let ca: TestCa;
let otherCa: TestCa;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-upstream-tls-'));
  ca = makeTestCa(dir);
  mkdirSync(join(dir, 'other'));
  otherCa = makeTestCa(join(dir, 'other'));
  issueServerCert(dir, 'wrong-name', ['app.other.test']);
  // Tableau is reached by address: nginx's proxy_pass to a URL from the gate config resolves host
  // names at request time only with a `resolver`, and the test machine has no DNS server. nginx 1.22
  // checks the certificate's DNS names only (X509_check_host), Node its IP addresses: this one has both.
  issueServerCert(dir, 'tableau', ['127.0.0.1', 'DNS:127.0.0.1']);
  issueServerCert(join(dir, 'other'), 'tableau', ['127.0.0.1', 'DNS:127.0.0.1']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file of the config nginx runs (the repo's nginx/ as rendered into the stack's prefix). */
function rendered(stack: Stack, file: string): string {
  return readFileSync(join(stack.nginx.prefix, 'conf', file), 'utf8');
}

describe('an https app with a certificate from UPSTREAM_CA_FILE', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ upstreamTls: { certFile: ca.certFile, keyFile: ca.keyFile }, nginxVars: { UPSTREAM_CA_FILE: join(dir, 'ca.crt') } });
    await stack.createUser('kirk', password, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('passes: the app gets the identity headers over TLS, with SNI, and never the session cookie', async () => {
    const { session } = await stack.login('kirk', password);
    stack.upstream.reset();
    const page = await stack.request('GET', '/bridge?x=1', { accept: 'text/html', cookie: `${session}; theme=dark` });
    expect(page.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    const seen = stack.upstream.seen[0]!;
    expect(seen.url).toBe('/bridge?x=1');
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(seen.headers['x-payload-user']).toBe('local:kirk');
    expect(seen.headers.cookie).toBe('theme=dark');
    expect(seen.tls).toEqual({ servername: 'localhost', sessionReused: false });
  });

  test('a new connection to the app resumes the TLS session (proxy_ssl_session_reuse)', async () => {
    const { session } = await stack.login('kirk', password);
    stack.upstream.reset();
    // Each request on a new TLS connection (nginx's keep-alive ones dropped after each). Each nginx
    // worker keeps its own session, so with 2 workers at least one of 4 requests resumes; in
    // practice all but each worker's first do.
    for (let i = 0; i < 4; i++) {
      stack.upstream.closeConnections();
      expect((await stack.request('GET', `/round/${i}`, { cookie: session! })).status).toBe(200);
    }
    const resumed = stack.upstream.seen.filter((s) => s.tls?.sessionReused).length;
    expect(resumed).toBeGreaterThanOrEqual(1);
    for (const seen of stack.upstream.seen) expect(seen.tls?.servername).toBe('localhost');
  });

  test('the rendered site proxies with https and verifies the name of APP_UPSTREAM', async () => {
    const site = rendered(stack, 'snippets/upstream-tls.d/app-location.conf');
    expect(site).toContain('include snippets/upstream-tls-verify.conf;');
    expect(site).toContain(`proxy_ssl_trusted_certificate ${join(dir, 'ca.crt')};`);
    expect(site).toContain('proxy_ssl_name localhost;');
    const verify = rendered(stack, 'snippets/upstream-tls-verify.conf');
    expect(verify).toContain('proxy_ssl_verify on;');
    expect(verify).toContain('proxy_ssl_protocols TLSv1.2 TLSv1.3;');
    expect(rendered(stack, 'sites/gateway.conf')).toContain('proxy_pass https://protected_app/;');
  });
});

const refusedCases: Array<[string, () => { certFile: string; keyFile: string }, RegExp]> = [
  ['a certificate from a CA that UPSTREAM_CA_FILE does not hold (a man in the middle)', () => otherCa, /upstream SSL certificate verify error: \(\d+:unable to verify the first certificate\)/],
  ['a certificate from the right CA for another name', () => ({ certFile: join(dir, 'wrong-name.crt'), keyFile: join(dir, 'wrong-name.key') }), /upstream SSL certificate does not match "localhost"/],
];
for (const [name, cert, logged] of refusedCases) {
  describe(`an https app with ${name}`, () => {
    let stack: Stack;
    const test = stackTest(() => stack);

    beforeAll(async () => {
      stack = await startStack({ upstreamTls: cert(), nginxVars: { UPSTREAM_CA_FILE: join(dir, 'ca.crt') } });
      await stack.createUser('kirk', password);
    }, 60_000);
    afterAll(async () => {
      await stack?.stop();
    });

    test('gets the branded 502 page (JSON for API clients), and the app sees no request at all', async () => {
      const { session } = await stack.login('kirk', password);
      stack.upstream.reset();
      const page = await stack.request('GET', '/bridge', { accept: 'text/html', cookie: session! });
      expect(page.status).toBe(502);
      expect(page.body).toContain('The application behind this gateway is not answering');
      const api = await stack.request('GET', '/bridge', { accept: 'application/json', cookie: session! });
      expect(api.status).toBe(502);
      expect(JSON.parse(api.body)).toMatchObject({ error: 'unavailable', reason: 'app-unavailable' });
      expect(stack.upstream.seen).toEqual([]);
      expect(stack.nginx.errorLog()).toMatch(logged);
    });
  });
}

const SITE = { contentUrl: 'analytics', id: '0b1c2d3e-0000-4000-8000-0000000000cc' };
const TABLEAU_PASSWORD = 'tableau only password 7';

/**
 * A Tableau fake over https with `cert` (a folder of this run's CAs: '' the first, 'other' the
 * second; its tableau.crt), and the stack in front of it, the auth service trusting `authCa` and
 * nginx `nginxCa` (folders too; undefined: nginx's default, the system store).
 */
function tableauOverHttps(cert: string, authCa: string, nginxCa?: string) {
  const parts: { tableau?: TableauFake; stack?: Stack } = {};
  beforeAll(async () => {
    parts.tableau = await startTableauFake({
      site: SITE,
      users: [{ name: 'tina', password: TABLEAU_PASSWORD, siteRole: 'Explorer', groups: [] }],
      tls: { certFile: join(dir, cert, 'tableau.crt'), keyFile: join(dir, cert, 'tableau.key') },
    });
    parts.stack = await startStack({
      env: { TABLEAU_URL: parts.tableau.url, TABLEAU_SITE: SITE.contentUrl, TABLEAU_CA_FILE: join(dir, authCa, 'ca.crt'), TABLEAU_TIMEOUT_MS: '2000' },
      nginxVars: nginxCa === undefined ? {} : { TABLEAU_CA_FILE: join(dir, nginxCa, 'ca.crt') },
    });
  }, 60_000);
  afterAll(async () => {
    await parts.stack?.stop();
    await parts.tableau?.close();
  });
  return { tableau: () => parts.tableau!, stack: () => parts.stack!, test: stackTest(() => parts.stack!) };
}

describe('Tableau over https with TABLEAU_CA_FILE', () => {
  const { tableau, stack, test } = tableauOverHttps('', '', '');

  test("signs in through Tableau's REST API over https, and /api/ reaches Tableau over https with the user's token", async () => {
    expect(tableau().url).toMatch(/^https:/);
    const { res, session } = await stack().login('tina', TABLEAU_PASSWORD);
    expect(res.status).toBe(302);
    expect(session).not.toBeNull();
    expect(tableau().signIns()).toHaveLength(1);
    const api = await stack().request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: session! });
    expect(api.status).toBe(200);
    expect((JSON.parse(api.body) as { calledWith: { token: string } }).calledWith.token).toBe(tableau().issuedTokens().at(-1));
  });
});

describe('Tableau over https with a certificate TABLEAU_CA_FILE does not trust', () => {
  const { tableau, stack, test } = tableauOverHttps('other', '');

  test('sign-in never sends the password: the TLS handshake fails first, and the user sees "not reachable"', async () => {
    const { res, session } = await stack().login('tina', TABLEAU_PASSWORD);
    expect(session).toBeNull();
    expect(res.body).toContain('Tableau is not reachable right now');
    expect(tableau().signIns()).toEqual([]);
    expect(stack().authLogs()).toMatch(/self[- ]signed|unable to verify|local issuer/i);
  });
});

describe("Tableau over https: nginx's /api/ pass-through trusts only its TABLEAU_CA_FILE", () => {
  // Tableau's certificate comes from the other CA: the auth service trusts that one (so sign-in
  // works), nginx only the first.
  const { tableau, stack, test } = tableauOverHttps('other', 'other', '');

  test("a Tableau certificate from another CA: /api/ answers 502 JSON, and Tableau never gets the user's request", async () => {
    const { session } = await stack().login('tina', TABLEAU_PASSWORD);
    expect(session).not.toBeNull();
    const before = tableau().requests.length;
    const api = await stack().request('GET', `/api/3.19/sites/${SITE.id}/workbooks`, { accept: 'application/json', cookie: session! });
    expect(api.status).toBe(502);
    expect(JSON.parse(api.body)).toEqual({ error: 'tableau-unavailable', reason: 'upstream-unreachable' });
    expect(tableau().requests.length).toBe(before);
    expect(stack().nginx.errorLog()).toMatch(/upstream SSL certificate verify error/);
  });
});

/**
 * A second, named app over https, as an operator declares it in sites/ (examples/nginx/two-apps.conf.template):
 * its own upstream block, nginx/snippets/upstream-tls-verify.conf, its own CA file and its own name.
 * Three locations of the app `finance` reach the same https app: one as documented, one trusting
 * another CA, one expecting another name. Each has its own upstream block: nginx keeps kept-alive
 * connections per upstream block and reuses them in any location without a new certificate check
 * (docs/deployment.md "HTTPS upstreams").
 */
function financeOverHttps(port: number, locations: Array<{ path: string; ca?: string; name?: string }>): string {
  const upstreams = locations.map((l, i) => `
upstream finance_app_${i} {
    server 127.0.0.1:${port};
    keepalive 16;
}
`);
  // A location without ca and name is one whose author forgot the include and both lines.
  const blocks = locations.map((l, i) =>
    l.ca === undefined
      ? `
    location ${l.path} {
        include snippets/protect.conf;
        proxy_pass https://finance_app_${i}/;
    }
`
      : `
    location ${l.path} {
        include snippets/protect.conf;
        include snippets/upstream-tls-verify.conf;
        proxy_ssl_trusted_certificate ${l.ca};
        proxy_ssl_name ${l.name};
        proxy_pass https://finance_app_${i}/;
    }
`,
  );
  return `${upstreams.join('')}
server {
    listen \${PROXY_LISTEN};
    server_name finance.localhost;
    absolute_redirect off;
    set $gate_app finance;

    include snippets/gate-server.conf;
${blocks.join('')}}
`;
}

describe('a second app, named in sites/, over https with upstream-tls-verify.conf, its own CA and proxy_ssl_name', () => {
  let stack: Stack;
  let finance: EchoUpstream;
  const test = stackTest(() => stack);
  const kirk = () => sessionCookieAt(stack, Math.floor(Date.now() / 1000), { groups: ['Federation', 'Finance'] });
  const get = (path: string, accept = 'text/html') =>
    stack.request('GET', path, { host: `finance.localhost:${stack.proxyPort}`, accept, cookie: `${kirk()}; theme=dark` });

  beforeAll(async () => {
    const cert = issueServerCert(dir, 'finance', ['finance.internal']);
    finance = await startEchoUpstream({ tls: cert });
    stack = await startStack({
      env: { POLICY_FILE: join(REPO_ROOT, 'examples', 'nginx', 'two-apps-policy.yaml') },
      editSite: (site) =>
        site +
        financeOverHttps(finance.port, [
          { path: '/', ca: join(dir, 'ca.crt'), name: 'finance.internal' },
          { path: '/other-ca/', ca: join(dir, 'other', 'ca.crt'), name: 'finance.internal' },
          { path: '/other-name/', ca: join(dir, 'ca.crt'), name: 'payroll.internal' },
          { path: '/no-include/' },
        ]),
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    await finance?.close();
  });

  test('trusted: 200, the app gets the identity headers over TLS with SNI = proxy_ssl_name, never the session cookie', async () => {
    finance.reset();
    stack.upstream.reset();
    const page = await get('/ledger?y=2');
    expect(page.status).toBe(200);
    expect(finance.seen).toHaveLength(1);
    const seen = finance.seen[0]!;
    expect(seen.url).toBe('/ledger?y=2');
    expect(seen.headers['x-payload-username']).toBe('kirk');
    expect(seen.headers.cookie).toBe('theme=dark');
    expect(seen.tls).toMatchObject({ servername: 'finance.internal' });
    expect(stack.upstream.seen).toEqual([]);
  });

  const refused: Array<[string, string, RegExp]> = [
    ['trusting another CA', '/other-ca/ledger', /upstream SSL certificate verify error: \(\d+:unable to verify the first certificate\)/],
    ['expecting another name', '/other-name/ledger', /upstream SSL certificate does not match "payroll\.internal"/],
    // nginx.conf verifies every https upstream against the system store by default: a private CA's
    // certificate is refused where the operator forgot the include, never passed unverified.
    ['without the include (nginx.conf\'s default: verify against the system store)', '/no-include/ledger', /upstream SSL certificate verify error/],
  ];
  for (const [name, path, logged] of refused) {
    test(`${name}: the branded 502 page (JSON for API clients), and the app sees no request`, async () => {
      finance.reset();
      const page = await get(path);
      expect(page.status).toBe(502);
      expect(page.body).toContain('The application behind this gateway is not answering');
      const api = await get(path, 'application/json');
      expect(api.status).toBe(502);
      expect(JSON.parse(api.body)).toMatchObject({ error: 'unavailable', reason: 'app-unavailable' });
      expect(finance.seen).toEqual([]);
      expect(stack.nginx.errorLog()).toMatch(logged);
    });
  }

  test("without the location's proxy_ssl_trusted_certificate nginx.conf's system store applies: the reload works, and a private CA's app is still refused", async () => {
    const source = readFileSync(join(stack.nginx.prefix, 'source-dir'), 'utf8').trim();
    const site = join(source, 'sites', 'gateway.conf.template');
    const text = readFileSync(site, 'utf8');
    const without = text.replace(`        proxy_ssl_trusted_certificate ${join(dir, 'ca.crt')};\n        proxy_ssl_name finance.internal;\n`, '        proxy_ssl_name finance.internal;\n');
    expect(without).not.toBe(text);
    writeFileSync(site, without);
    try {
      const reload = stack.nginx.reload({ sourceDir: source });
      expect(reload.ok).toBe(true);
      finance.reset();
      // New connections only: the upstream block's kept-alive ones were verified under the old config.
      await new Promise((r) => setTimeout(r, 500));
      const res = await get('/ledger');
      expect(res.status).toBe(502);
      expect(finance.seen).toEqual([]);
    } finally {
      writeFileSync(site, text);
      const back = stack.nginx.reload({ sourceDir: source });
      expect(back.ok).toBe(true);
    }
    finance.reset();
    expect((await get('/ledger')).status).toBe(200);
    expect((await get('/other-ca/ledger')).status).toBe(502);
    expect(finance.seen).toHaveLength(1);
  });
});
