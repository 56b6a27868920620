/**
 * The nginx container's entrypoint (docker/nginx-entrypoint.sh, what docker-compose runs) started
 * here without Docker, against the repo's nginx/ folder and the shipped bundle: it must wait for the
 * gate config AND the compiled access policy the auth service writes into the shared volume, link
 * both into nginx's runtime/, and serve with the policy in force. Without the compiled policy it must
 * refuse to start, saying which file is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { buildGateConfig, writeGateConfig } from '../../auth-service/src/services/gate-config.js';
import { writeNginxPages } from '../../auth-service/src/services/gate-files.js';
import { NO_THEME } from '../../auth-service/src/views/html.js';
import { compilePolicyFile } from '../../auth-service/src/policy/policy-runtime.js';
import { freePort, HTTPS_SNIPPETS_DIR, STATUS_SNIPPETS_DIR, UPSTREAM_TLS_SNIPPETS_DIR, prepareNginxPrefix, REPO_ROOT, waitForPort } from '../../scripts/lib/nginx-runtime.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { rawRequest } from '../support/http.js';
import { waitForHttp } from '../support/wait.js';
import { strongSecret } from '../support/stack.js';
import { httpsRequest, makeTestCa } from '../support/tls.js';

const ENTRYPOINT = join(REPO_ROOT, 'docker', 'nginx-entrypoint.sh');

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Output goes to a file, as in a container where stdout is a pipe or a file: nginx's logs are
 * symlinked to /dev/stdout, which cannot be opened when it is a socket (node's 'pipe' stdio).
 */
function runEntrypoint(env: Record<string, string>, outputFile: string): Started {
  const fd = openSync(outputFile, 'w');
  const child = spawn('sh', [ENTRYPOINT, 'run'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => readFileSync(outputFile, 'utf8'), exited };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill('SIGQUIT');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await s.exited;
  clearTimeout(timer);
}

describe('docker/nginx-entrypoint.sh (the compose nginx service), run without Docker', () => {
  let tmp: string;
  let upstream: EchoUpstream;
  let started: Started | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'gw-entry-'));
    // As root (a container's nginx master), the workers run as nobody and must reach the prefix's pages.
    chmodSync(tmp, 0o711);
    upstream = await startEchoUpstream();
  });
  afterAll(async () => {
    await stop(started);
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  async function env(name: string, withPolicy: boolean, withPages = true): Promise<{ env: Record<string, string>; port: number }> {
    const run = join(tmp, name, 'run');
    mkdirSync(run, { recursive: true });
    // As the auth service writes them (before the gate config), with its own folder mode 0700 as in
    // the auth image: the entrypoint copies them where nginx's workers can read them.
    // The prefix exists in the image, 0755 (docker/nginx.Dockerfile); the entrypoint's umask 027 would make it 0750.
    mkdirSync(join(tmp, name, 'prefix'), { mode: 0o755 });
    if (withPages) await writeNginxPages(join(run, 'pages'), 'Entrypoint Gateway', NO_THEME);
    const gateConfigFile = join(run, 'gate-config.json');
    const secret = strongSecret();
    await writeGateConfig(
      gateConfigFile,
      buildGateConfig({ jwt: { secret, previousSecrets: [], previousKeys: [] }, session: { cookieName: 'gw_session', ipBinding: 'exact', leewaySeconds: 30, ttlSeconds: 3600, cookieSecure: false }, sessionLifetimes: { maxSeconds: 3600, idleSeconds: 3600 } } as Parameters<typeof buildGateConfig>[0]),
    );
    if (withPolicy) {
      const compiled = compilePolicyFile(join(REPO_ROOT, 'nginx', 'policy.yaml'), Math.floor(Date.now() / 1000));
      if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
      writeFileSync(join(run, 'policy.json'), JSON.stringify(compiled.compiled));
    }
    const port = await freePort();
    return {
      port,
      env: {
        GATEWAY_NGINX_SOURCE: join(REPO_ROOT, 'nginx'),
        GATEWAY_NGINX_PREFIX: join(tmp, name, 'prefix'),
        GATEWAY_NJS_BUNDLE: join(REPO_ROOT, 'njs', 'dist', 'gate.js'),
        GATE_CONFIG_FILE: gateConfigFile,
        GATE_CONFIG_WAIT_SECONDS: '2',
        PROXY_LISTEN: `127.0.0.1:${port}`,
        APP_UPSTREAM: `127.0.0.1:${upstream.port}`,
        AUTH_UPSTREAM: '127.0.0.1:9',
      },
    };
  }

  test('serves with the compiled policy from the shared volume in force', async () => {
    const { env: e, port } = await env('ok', true);
    started = runEntrypoint(e, join(tmp, 'ok', 'output.log'));
    await waitForPort(port, 15_000, () => started!.child.exitCode !== null, () => started!.output());
    await waitForHttp(port, 15_000);
    // Log files nginx creates (an operator's log volume instead of stdout) are 0640, not 0644.
    expect(/^Umask:\s*(\d+)$/m.exec(readFileSync(`/proc/${started.child.pid}/status`, 'utf8'))?.[1]).toBe('0027');
    // /healthz is public in nginx/policy.yaml: no session needed, and the app receives it.
    const health = await rawRequest(port, 'GET', '/healthz', { accept: 'application/json' });
    expect(health.status).toBe(200);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/healthz']);
    // Anything else still needs a session.
    const other = await rawRequest(port, 'GET', '/federation', { accept: 'application/json' });
    expect(other.status).toBe(401);
    // The gate's path rules are on (they apply only with a policy).
    const tricky = await rawRequest(port, 'GET', '/healthz/..;/federation', { accept: 'application/json' });
    expect(tricky.status).toBe(400);
    // The WAF is on by default in the container: an SQL injection on the public path is refused
    // before the app sees it, and the matched rules go to the container's stderr (logs/waf.log).
    const attack = await rawRequest(port, 'GET', `/healthz?id=${encodeURIComponent("1' OR '1'='1' --")}`, { accept: 'application/json', host: 'gateway.localhost' });
    expect(attack.status).toBe(403);
    expect(JSON.parse(attack.body)).toEqual({ error: 'forbidden', reason: 'request-blocked' });
    expect(upstream.seen.map((s) => s.url)).toEqual(['/healthz']);
    // nginx's own pages are the auth service's, with BRAND_NAME; AUTH_UPSTREAM is down here, so
    // /login says that sign-in is unavailable.
    const down = await rawRequest(port, 'GET', '/login', { accept: 'text/html' });
    expect({ status: down.status, log: down.status === 502 ? '' : started.output() }).toEqual({ status: 502, log: '' });
    expect(down.body).toContain('<h1>Sign-in unavailable</h1>');
    expect(down.body).toContain('<span>Entrypoint Gateway</span>');
    expect(down.body).toMatch(/Request id: <code>[0-9a-f]{32}<\/code>/);
    await stop(started);
    // The access log goes to the container's stdout and names the deciding rule.
    const logged = started
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{"time"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.find((e) => e.path === '/healthz')).toMatchObject({ status: 200, user: '', reason: 'public', rule: 'healthz' });
    expect(started.output()).toMatch(/ModSecurity: Warning\. .*\[id "942100"\]/);
  }, 30_000);

  test('refuses to start without the compiled policy, naming the file', async () => {
    const { env: e } = await env('missing', false);
    const s = runEntrypoint(e, join(tmp, 'missing', 'output.log'));
    const code = await s.exited;
    expect(code).not.toBe(0);
    expect(s.output()).toContain('compiled access policy');
    expect(s.output()).toContain(join(tmp, 'missing', 'run', 'policy.json'));
  }, 30_000);

  test("refuses to start without nginx's pages, naming the folder", async () => {
    const { env: e } = await env('no-pages', true, false);
    const s = runEntrypoint(e, join(tmp, 'no-pages', 'output.log'));
    const code = await s.exited;
    expect(code).not.toBe(0);
    expect(s.output()).toContain(`nginx's pages are missing from ${join(tmp, 'no-pages', 'run', 'pages')}`);
  }, 30_000);

  test('renders the Tableau /api/ limits: defaults when unset, the values given otherwise', async () => {
    const { env: e, port } = await env('limits', true);
    started = runEntrypoint({ ...e, TABLEAU_API_TIMEOUT_SECONDS: '', TABLEAU_API_MAX_BODY_MB: '200', TABLEAU_API_PATH: '/tableau-api/' }, join(tmp, 'limits', 'output.log'));
    await waitForPort(port, 15_000, () => started!.child.exitCode !== null, () => started!.output());
    await waitForHttp(port, 15_000);
    const rendered = readFileSync(join(tmp, 'limits', 'prefix', 'conf', 'snippets', 'tableau-api.conf'), 'utf8');
    expect(rendered).toContain('proxy_read_timeout 300s;');
    expect(rendered).toContain('client_max_body_size 200m;');
    expect(rendered).not.toContain('${');
    const location = readFileSync(join(tmp, 'limits', 'prefix', 'conf', 'snippets', 'tableau-api.d', 'tableau-api-location.conf'), 'utf8');
    expect(location).toContain('location /tableau-api/ {');
    expect(location).toContain('set $gate_tableau_api_path /tableau-api/;');
    expect(location).not.toContain('${');
    await stop(started);
  }, 30_000);

  test('TABLEAU_API_PATH=off renders no pass-through location', async () => {
    const { env: e, port } = await env('api-off', true);
    started = runEntrypoint({ ...e, TABLEAU_API_PATH: 'off' }, join(tmp, 'api-off', 'output.log'));
    await waitForPort(port, 15_000, () => started!.child.exitCode !== null, () => started!.output());
    await waitForHttp(port, 15_000);
    const snippets = join(tmp, 'api-off', 'prefix', 'conf', 'snippets');
    expect(existsSync(join(snippets, 'tableau-api.d'))).toBe(false);
    expect(existsSync(join(tmp, 'api-off', 'prefix', 'conf', 'tableau-api'))).toBe(false);
    expect(readFileSync(join(snippets, 'tableau-api.conf'), 'utf8')).toContain('location = /_gate/tableau-api {');
    await stop(started);
  }, 30_000);

  test('an https APP_UPSTREAM: verified against UPSTREAM_CA_FILE with SNI, rendered as `make up` renders it', async () => {
    const { env: e, port } = await env('upstream-tls', true);
    const caDir = mkdtempSync(join(tmp, 'ca-'));
    const ca = makeTestCa(caDir);
    const tlsApp = await startEchoUpstream({ tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
    try {
      const settings = { APP_UPSTREAM: `https://localhost:${tlsApp.port}/`, UPSTREAM_CA_FILE: join(caDir, 'ca.crt'), TABLEAU_CA_FILE: join(caDir, 'ca.crt') };
      started = runEntrypoint({ ...e, ...settings }, join(tmp, 'upstream-tls', 'output.log'));
      await waitForPort(port, 15_000, () => started!.child.exitCode !== null, () => started!.output());
      await waitForHttp(port, 15_000);
      const health = await rawRequest(port, 'GET', '/healthz', { accept: 'application/json' }).catch((err: Error) => {
        throw new Error(`${err.message}\n--- entrypoint and nginx output ---\n${started!.output()}`);
      });
      expect(health.status).toBe(200);
      expect(tlsApp.seen.map((r) => [r.url, r.tls?.servername])).toEqual([['/healthz', 'localhost']]);
      expect(started.output()).toContain(`app https://localhost:${tlsApp.port}/`);
      // The shell's rendering and scripts/lib/nginx-runtime.ts's agree.
      const { prefix } = prepareNginxPrefix({ prefix: join(tmp, 'upstream-tls', 'ts-prefix'), vars: { PROXY_LISTEN: e.PROXY_LISTEN!, AUTH_UPSTREAM: e.AUTH_UPSTREAM!, ...settings } });
      for (const file of [join(UPSTREAM_TLS_SNIPPETS_DIR, 'app-location.conf'), join('sites', 'gateway.conf'), join('snippets', 'tableau-api.conf')]) {
        expect(readFileSync(join(tmp, 'upstream-tls', 'prefix', 'conf', file), 'utf8').trimEnd()).toBe(readFileSync(join(prefix, 'conf', file), 'utf8').trimEnd());
      }
      expect(readFileSync(join(prefix, 'conf', 'sites', 'gateway.conf'), 'utf8')).toContain(`server localhost:${tlsApp.port};`);
      await stop(started);
      // A plain http app renders nothing of upstream-tls/ (the earlier runs).
      expect(readdirSync(join(tmp, 'ok', 'prefix', 'conf', 'snippets'))).not.toContain('upstream-tls.d');
      expect(readdirSync(join(tmp, 'ok', 'prefix', 'conf'))).not.toContain('upstream-tls');
    } finally {
      await tlsApp.close();
    }
  }, 30_000);

  test('refuses a bad APP_UPSTREAM and unusable CA files, naming every one at once', async () => {
    const { env: e } = await env('bad-upstream', true);
    const keyOnly = join(tmp, 'bad-upstream', 'key.pem');
    writeFileSync(keyOnly, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
    const s = runEntrypoint(
      { ...e, APP_UPSTREAM: 'https://app.internal/base', UPSTREAM_CA_FILE: '/etc/gateway/certs/missing.pem', TABLEAU_CA_FILE: keyOnly, WAF_MODE: 'on' },
      join(tmp, 'bad-upstream', 'output.log'),
    );
    expect(await s.exited).not.toBe(0);
    expect(s.output()).toContain('APP_UPSTREAM: must be host:port, http://host[:port] or https://host[:port] (no path), e.g. https://app.internal:8443 (received \\"https://app.internal/base\\")');
    expect(s.output()).toContain('UPSTREAM_CA_FILE: cannot read the file (received \\"/etc/gateway/certs/missing.pem\\")');
    expect(s.output()).toContain(`TABLEAU_CA_FILE: must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) (received \\"${keyOnly}\\")`);
    expect(s.output()).toContain('WAF_MODE: must be On, DetectionOnly or Off');
    // UPSTREAM_CA_FILE with a plain http app is a mistake too.
    const plain = runEntrypoint({ ...e, UPSTREAM_CA_FILE: '/etc/ssl/certs/ca-certificates.crt' }, join(tmp, 'bad-upstream', 'plain.log'));
    expect(await plain.exited).not.toBe(0);
    expect(plain.output()).toContain('UPSTREAM_CA_FILE: only applies with an https:// APP_UPSTREAM');
  }, 30_000);

  test('refuses bad Tableau /api/ limits and WAF settings, naming every one at once', async () => {
    const { env: e } = await env('bad-limits', true);
    const s = runEntrypoint({ ...e, TABLEAU_API_TIMEOUT_SECONDS: '60s; evil', TABLEAU_API_MAX_BODY_MB: '0', TABLEAU_API_PATH: '/api/ { return 200; }', WAF_MODE: 'on', WAF_PARANOIA_LEVEL: '5' }, join(tmp, 'bad-limits', 'output.log'));
    expect(await s.exited).not.toBe(0);
    expect(s.output()).toContain('WAF_MODE: must be On, DetectionOnly or Off (received \\"on\\")');
    expect(s.output()).toContain('WAF_PARANOIA_LEVEL: must be 1, 2, 3 or 4 (received \\"5\\")');
    expect(s.output()).toContain('TABLEAU_API_TIMEOUT_SECONDS: must be a whole number from 1 to 3600');
    expect(s.output()).toContain('TABLEAU_API_MAX_BODY_MB: must be a whole number from 1 to 4096');
    expect(s.output()).toContain('TABLEAU_API_PATH: must be off, or a path prefix');
  }, 30_000);

  test('HTTPS and trusted balancers: rendered as `make up` renders them, served, http redirected', async () => {
    const { env: e, port } = await env('https', true);
    const ca = makeTestCa(mkdtempSync(join(tmp, 'ca-')));
    const httpsPort = await freePort();
    const settings = { TLS_CERT_FILE: ca.certFile, TLS_KEY_FILE: ca.keyFile, HTTPS_PORT: String(httpsPort), HSTS_INCLUDE_SUBDOMAINS: 'on', TRUSTED_PROXIES: '10.0.0.0/8,192.0.2.7' };
    started = runEntrypoint({ ...e, ...settings }, join(tmp, 'https', 'output.log'));
    await waitForPort(httpsPort, 15_000, () => started!.child.exitCode !== null, () => started!.output());
    await waitForHttp(port, 15_000);
    const page = await httpsRequest(httpsPort, ca.caPem, 'GET', '/healthz', { accept: 'application/json' });
    expect(page.status).toBe(200);
    expect(page.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const plain = await rawRequest(port, 'GET', '/healthz', { host: 'gw.example' });
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://gw.example:${httpsPort}/healthz`);
    // The shell's rendering and scripts/lib/nginx-runtime.ts's agree, file for file.
    const { prefix } = prepareNginxPrefix({ prefix: join(tmp, 'https', 'ts-prefix'), vars: { PROXY_LISTEN: e.PROXY_LISTEN!, APP_UPSTREAM: 'a:1', AUTH_UPSTREAM: 'b:2', ...settings } });
    const shell = join(tmp, 'https', 'prefix', 'conf', HTTPS_SNIPPETS_DIR);
    const ts = join(prefix, 'conf', HTTPS_SNIPPETS_DIR);
    expect(readdirSync(shell).sort()).toEqual(['balancer-http.conf', 'balancer-server.conf', 'hsts-http.conf', 'tls-server.conf']);
    for (const name of readdirSync(ts)) expect(readFileSync(join(shell, name), 'utf8').trimEnd()).toBe(readFileSync(join(ts, name), 'utf8').trimEnd());
    await stop(started);
  }, 30_000);

  test('NGINX_STATUS_PORT: stub_status on loopback, rendered as `make up` renders it; none without it', async () => {
    const { env: e, port } = await env('status', true);
    const statusPort = await freePort();
    started = runEntrypoint({ ...e, NGINX_STATUS_PORT: String(statusPort) }, join(tmp, 'status', 'output.log'));
    await waitForPort(port, 15_000, () => started!.child.exitCode !== null, () => started!.output());
    await waitForHttp(port, 15_000);
    const status = await rawRequest(statusPort, 'GET', '/stub_status');
    expect(status.status).toBe(200);
    expect(status.body).toMatch(/^Active connections: \d+/);
    const health = await rawRequest(port, 'GET', '/_gate/health');
    expect({ status: health.status, body: health.body }).toEqual({ status: 200, body: '{"status":"ok"}\n' });
    const { prefix } = prepareNginxPrefix({ prefix: join(tmp, 'status', 'ts-prefix'), vars: { PROXY_LISTEN: e.PROXY_LISTEN!, APP_UPSTREAM: 'a:1', AUTH_UPSTREAM: 'b:2', NGINX_STATUS_PORT: String(statusPort) } });
    const shell = join(tmp, 'status', 'prefix', 'conf', STATUS_SNIPPETS_DIR);
    expect(readdirSync(shell)).toEqual(['status-http.conf']);
    expect(readFileSync(join(shell, 'status-http.conf'), 'utf8')).toContain(`listen 127.0.0.1:${statusPort};`);
    expect(readFileSync(join(shell, 'status-http.conf'), 'utf8')).toBe(readFileSync(join(prefix, 'conf', STATUS_SNIPPETS_DIR, 'status-http.conf'), 'utf8'));
    await stop(started);
    // The earlier runs had no NGINX_STATUS_PORT: no listener, and nothing of status/ left in conf/.
    expect(readdirSync(join(tmp, 'ok', 'prefix', 'conf', 'snippets'))).not.toContain('status.d');
    expect(readdirSync(join(tmp, 'ok', 'prefix', 'conf'))).not.toContain('status');
  }, 30_000);

  test('refuses a bad NGINX_STATUS_PORT, naming it', async () => {
    const { env: e } = await env('bad-status', true);
    const s = runEntrypoint({ ...e, NGINX_STATUS_PORT: '8081;evil' }, join(tmp, 'bad-status', 'output.log'));
    expect(await s.exited).not.toBe(0);
    expect(s.output()).toContain('NGINX_STATUS_PORT: must be a TCP port 1-65535, or unset for no status listener (received \\"8081;evil\\")');
  }, 30_000);

  test('refuses half an HTTPS setup and bad balancer addresses', async () => {
    const { env: e } = await env('bad-https', true);
    const s = runEntrypoint({ ...e, TLS_CERT_FILE: '/etc/gateway/certs/tls.crt', TRUSTED_PROXIES: '10.0.0.0/8;evil', HSTS_MAX_AGE: '1y' }, join(tmp, 'bad-https', 'output.log'));
    expect(await s.exited).not.toBe(0);
    expect(s.output()).toContain('TLS_KEY_FILE: set TLS_CERT_FILE and TLS_KEY_FILE together');
    expect(s.output()).toContain('TRUSTED_PROXIES: must be comma-separated IP addresses or CIDR ranges');
    expect(s.output()).toContain('HSTS_MAX_AGE: must be a whole number from 0 to 63072000');
  }, 30_000);
});
