/**
 * What a newcomer meets when running `make up` (scripts/up.ts, run as a user would): it says
 * "Gateway ready" only when the gateway serves, fails loudly with the cause otherwise, reports every
 * configuration problem at once, takes nginx down with it, and keeps two instances on different
 * ports of one checkout apart (each with its own `make reload`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { freePort, isAlive, REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { waitUntil } from '../support/wait.js';
import { rawRequest } from '../support/http.js';
import { launchUp, runUpToExit, type Launched } from '../support/launcher.js';

const reload = (dataDir: string, env: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'reload.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATA_DIR: dataDir, ...env },
    encoding: 'utf8',
  });

describe('make up, failing loudly', () => {
  test('a PROXY_PORT held by another program stops make up with "port N is in use", never "Gateway ready"', async () => {
    const port = await freePort();
    const squatter: Server = createServer((s) => s.end('not nginx\n'));
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', () => r()));
    try {
      const run = await runUpToExit({ PROXY_PORT: String(port) });
      expect(run.code).toBe(1);
      expect(run.output).toContain(`port ${port} is in use`);
      expect(run.output).not.toContain('Gateway ready');
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  }, 60_000);

  test('reports every configuration problem at once: ports, password hashing, log level, an http TABLEAU_URL, the WAF settings', async () => {
    const run = await runUpToExit({ PROXY_PORT: 'eighty', PASSWORD_PBKDF2_ITERATIONS: '1', LOG_LEVEL: 'loud', TABLEAU_URL: 'http://tableau.internal', WAF_MODE: 'block', WAF_PARANOIA_LEVEL: '9' });
    expect(run.code).toBe(1);
    expect(run.output).toContain('PROXY_PORT: must be a TCP port 1-65535 (received "eighty")');
    expect(run.output).toMatch(/PASSWORD_PBKDF2_ITERATIONS: .*\(received "1"\)/);
    expect(run.output).toMatch(/LOG_LEVEL: must be one of/);
    expect(run.output).toMatch(/TABLEAU_URL: must use https/);
    expect(run.output).toContain('WAF_MODE: must be On, DetectionOnly or Off (received "block")');
    expect(run.output).toContain('WAF_PARANOIA_LEVEL: must be 1, 2, 3 or 4 (received "9")');
  }, 60_000);

  test('an unreachable DATABASE_URL names host:port and the cause, not the password', async () => {
    const dbPort = await freePort();
    const run = await runUpToExit({ DATABASE_URL: `postgres://gw:s3cret-pw@127.0.0.1:${dbPort}/gw` });
    expect(run.code).toBe(1);
    expect(run.output).toContain(`cannot reach the user store at 127.0.0.1:${dbPort}: connection refused`);
    expect(run.output).not.toContain('s3cret-pw');
    expect(run.output).not.toContain('Gateway ready');
  }, 60_000);
});

describe('two make up instances in one checkout', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-up-shared-'));
  const launched: Launched[] = [];
  afterAll(async () => {
    for (const l of launched) await l.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  test('each has its own runtime dir; kill -9 of one launcher takes its nginx down; the other still reloads', async () => {
    const a = await launchUp({}, { dataDir });
    launched.push(a);
    const metricsPort = await freePort();
    const statusPort = await freePort();
    const b = await launchUp({ METRICS_PORT: String(metricsPort), NGINX_STATUS_PORT: String(statusPort) }, { dataDir });
    launched.push(b);
    const prefixA = join(dataDir, `nginx-${a.proxyPort}`);
    const prefixB = join(dataDir, `nginx-${b.proxyPort}`);

    // Where the logs are, and the monitoring endpoints, printed at start-up.
    expect(await waitUntil(() => /^Metrics: /m.test(b.output()), 5000)).toBe(true);
    expect(b.output()).toContain(`  nginx access log (JSON lines)  ${join(prefixB, 'logs', 'access.log')}\n`);
    expect(b.output()).toContain(`  nginx error log                ${join(prefixB, 'logs', 'error.log')}\n`);
    expect(b.output()).toContain(`Metrics: http://127.0.0.1:${metricsPort}/metrics; nginx stub_status http://127.0.0.1:${statusPort}/stub_status\n`);
    expect(a.output()).toContain('Metrics: auth service off (set METRICS_PORT); nginx stub_status off (set NGINX_STATUS_PORT)\n');
    expect((await rawRequest(metricsPort, 'GET', '/metrics')).body).toContain('gateway_auth_logins_total');
    expect((await rawRequest(statusPort, 'GET', '/stub_status')).body).toMatch(/^Active connections: /);
    expect((await rawRequest(b.proxyPort, 'GET', '/_gate/health')).status).toBe(200);
    const masterA = Number(readFileSync(join(prefixA, 'logs', 'nginx.pid'), 'utf8'));
    expect(Number(readFileSync(join(prefixB, 'logs', 'nginx.pid'), 'utf8'))).not.toBe(masterA);
    expect((await rawRequest(b.proxyPort, 'GET', '/login')).status).toBe(200);

    // Access logs hold user names and addresses: not for every local account.
    for (const name of ['access.log', 'error.log']) {
      expect({ name, mode: (statSync(join(prefixB, 'logs', name)).mode & 0o777).toString(8) }).toEqual({ name, mode: '640' });
    }

    a.process.kill('SIGKILL');
    expect(await waitUntil(() => !isAlive(masterA), 5000)).toBe(true);
    expect(await rawRequest(a.proxyPort, 'GET', '/login').then(() => 'answered', () => 'refused')).toBe('refused');

    // With PROXY_PORT unset, reload picks the one instance whose launcher still runs (B).
    const result = reload(dataDir, { PROXY_PORT: '' });
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(result.stdout).toMatch(/reloaded: new workers/);
    expect((await rawRequest(b.proxyPort, 'GET', '/login')).status).toBe(200);
    expect(reload(dataDir, { PROXY_PORT: String(b.proxyPort) }).status).toBe(0);

    // A third instance makes PROXY_PORT necessary.
    const c = await launchUp({}, { dataDir });
    launched.push(c);
    const ambiguous = reload(dataDir, { PROXY_PORT: '' });
    expect(ambiguous.status).toBe(1);
    expect(ambiguous.stderr).toMatch(/2 gateways run from .*choose one, e\.g\. PROXY_PORT=\d+ make reload/);

    const gone = reload(dataDir, { PROXY_PORT: String(a.proxyPort) });
    expect(gone.status).toBe(1);
  }, 180_000);
});
