/**
 * What bench/renewal.ts and bench/login-storm.ts share: the repo's gateway site rendered into a
 * prefix with its app upstream an nginx server answering from memory (in the same nginx), and the
 * auth service (auth-service/src/main.ts) in a child process, its JSON log in a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, prepareNginxPrefix, REPO_ROOT } from '../scripts/lib/nginx-runtime.js';

export interface BenchGateway {
  ports: { proxy: number; auth: number; upstream: number };
  prefix: string;
  gateConfigFile: string;
}

/** Renders the gateway site into `prefix` on free ports; start it with startNginx(prefix, ports.proxy). */
export async function prepareBenchGateway(prefix: string): Promise<BenchGateway> {
  const ports = { proxy: await freePort(), auth: await freePort(), upstream: await freePort() };
  const { gateConfigFile } = prepareNginxPrefix({
    prefix,
    vars: { PROXY_LISTEN: `127.0.0.1:${ports.proxy}`, APP_UPSTREAM: `127.0.0.1:${ports.upstream}`, AUTH_UPSTREAM: `127.0.0.1:${ports.auth}` },
    extraFiles: {
      'sites/bench-upstream.conf': `
# The protected app: nginx answering from memory, so it is never the bottleneck.
server {
    listen 127.0.0.1:${ports.upstream};
    access_log off;
    location / { return 200 "hello from upstream\\n"; }
}
`,
    },
  });
  return { ports, prefix, gateConfigFile };
}

/**
 * Spawns the auth service for `gateway` with `env` (DATABASE_URL, JWT_SECRET, ...) over the
 * listening and gate-config settings. It writes the gate config nginx reads (GATE_CONFIG_FILE), then
 * listens. Its log goes to `logFile`: a pipe to this process would stall it while wrk runs (spawnSync).
 */
export function spawnBenchAuthService(gateway: BenchGateway, logFile: string, env: Record<string, string>): ChildProcess {
  const logFd = openSync(logFile, 'w');
  try {
    return spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'auth-service', 'src', 'main.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', logFd, logFd],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        NODE_ENV: 'production',
        AUTH_HOST: '127.0.0.1',
        AUTH_PORT: String(gateway.ports.auth),
        AUTH_COOKIE_SECURE: 'false',
        GATE_CONFIG_FILE: gateway.gateConfigFile,
        ...env,
      },
    });
  } finally {
    closeSync(logFd);
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once `child` has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
