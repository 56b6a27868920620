/**
 * The Kubernetes nginx pod (deploy/kubernetes/nginx.yaml) played out without a cluster: the
 * gate-files init container (npm run gate-files) writes the gate files from the shipped settings.env
 * and secrets.env (a real key filled in), then the nginx container's entrypoint runs against the
 * image's nginx/ with the Kubernetes site file mounted over sites/gateway.conf.template, as the
 * subPath mount does. It must pass `nginx -t` and serve with the shipped policy in force.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runGateFilesCli } from '../../auth-service/src/cli/gate-files-cli.js';
import { freePort, REPO_ROOT, waitForPort } from '../../scripts/lib/nginx-runtime.js';
import { startEchoUpstream, type EchoUpstream } from '../support/echo-upstream.js';
import { rawRequest } from '../support/http.js';
import { waitForHttp } from '../support/wait.js';
import { strongSecret } from '../support/stack.js';

const K8S = join(REPO_ROOT, 'deploy', 'kubernetes');

/** KEY=VALUE lines as kustomize's `envs:` reads them. */
function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

describe('the Kubernetes nginx pod (init container + entrypoint), run without a cluster', () => {
  let tmp: string;
  let upstream: EchoUpstream;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'gw-k8s-pod-'));
    upstream = await startEchoUpstream();
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the init container writes the gate files, and nginx serves with the Kubernetes site and policy', async () => {
    // /etc/gateway/nginx in the image (COPY nginx/), with the site replaced by the ConfigMap's.
    const source = join(tmp, 'etc-gateway-nginx');
    cpSync(join(REPO_ROOT, 'nginx'), source, { recursive: true });
    copyFileSync(join(K8S, 'nginx', 'gateway.conf.template'), join(source, 'sites', 'gateway.conf.template'));

    // The init container: envFrom gateway-settings + gateway-secrets, paths mapped into tmp.
    const run = join(tmp, 'run-gate');
    mkdirSync(run);
    const gateConfigFile = join(run, 'gate-config.json');
    let stderr = '';
    const code = await runGateFilesCli([], {
      env: {
        ...readEnvFile(join(K8S, 'settings.env')),
        ...readEnvFile(join(K8S, 'secrets.env')),
        JWT_SECRET: strongSecret(),
        POLICY_FILE: join(K8S, 'nginx', 'policy.yaml'),
        GATE_CONFIG_FILE: gateConfigFile,
      },
      stderr: { write: (t: string) => (stderr += t) },
      logStream: { write: () => true } as never,
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });

    // The nginx container.
    const port = await freePort();
    const outputFile = join(tmp, 'output.log');
    const fd = openSync(outputFile, 'w');
    child = spawn('sh', [join(REPO_ROOT, 'docker', 'nginx-entrypoint.sh'), 'run'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GATEWAY_NGINX_SOURCE: source,
        GATEWAY_NGINX_PREFIX: join(tmp, 'prefix'),
        GATEWAY_NJS_BUNDLE: join(REPO_ROOT, 'njs', 'dist', 'gate.js'),
        GATE_CONFIG_FILE: gateConfigFile,
        GATE_CONFIG_WAIT_SECONDS: '2',
        PROXY_LISTEN: `127.0.0.1:${port}`,
        APP_UPSTREAM: `127.0.0.1:${upstream.port}`,
        AUTH_UPSTREAM: '127.0.0.1:9',
      },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    exited = new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    const output = () => readFileSync(outputFile, 'utf8');
    await waitForPort(port, 15_000, () => child!.exitCode !== null, output);
    await waitForHttp(port, 15_000);

    expect(readFileSync(join(tmp, 'prefix', 'conf', 'sites', 'gateway.conf'), 'utf8')).toContain('real_ip_header   X-Forwarded-For;');
    const health = await rawRequest(port, 'GET', '/healthz', { accept: 'application/json', 'x-forwarded-for': '203.0.113.7' });
    expect(health.status).toBe(200);
    expect(upstream.seen.map((s) => s.url)).toEqual(['/healthz']);
    expect((await rawRequest(port, 'GET', '/federation', { accept: 'application/json' })).status).toBe(401);

    child.kill('SIGQUIT');
    await exited;
    // X-Forwarded-For is trusted from private addresses only: loopback is not one of them.
    const logged = output()
      .split('\n')
      .filter((line) => line.startsWith('{"time"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.find((e) => e.path === '/healthz')).toMatchObject({ status: 200, remote_addr: '127.0.0.1', rule: 'healthz' });
  }, 30_000);
});
