/**
 * The repo's docker-compose.yml, run for real (make test-compose): the Docker daemon and the local
 * stand-in base images come from scripts/compose-test-env.sh; each run gets its own
 * .env (from .env.example plus generated secrets), free published port, and a temporary copy of
 * nginx/ as the mounted config, so the repo's files are never edited. The project name is fixed
 * (GATEWAY_COMPOSE_PROJECT, default gwcomposetest), so two runs on one daemon must not overlap.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strongSecret } from './stack.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command to its end, or kills it after `timeoutMs` (the result then has code null). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but throws with the output when the command does not exit 0. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}\n--- stdout\n${res.stdout.slice(-4000)}\n--- stderr\n${res.stderr.slice(-4000)}`);
  return res;
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? done(addr.port) : fail(new Error('no port'))));
    });
  });
}

export interface BaseImages {
  DEBIAN_IMAGE: string;
  NODE_IMAGE: string;
  POSTGRES_IMAGE: string;
}

/** Starts dockerd if none answers and builds the missing stand-in base images (first run: minutes). */
export async function startDockerEnv(): Promise<BaseImages> {
  const res = await runOk('bash', ['scripts/compose-test-env.sh', 'start'], { timeoutMs: 20 * 60_000 });
  const vars = Object.fromEntries(
    res.stdout
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.+)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  for (const k of ['DEBIAN_IMAGE', 'NODE_IMAGE', 'POSTGRES_IMAGE']) if (!vars[k]) throw new Error(`compose-test-env.sh printed no ${k}:\n${res.stdout}\n${res.stderr}`);
  return vars as unknown as BaseImages;
}

export async function stopDockerEnv(): Promise<void> {
  await run('bash', ['scripts/compose-test-env.sh', 'stop'], { timeoutMs: 60_000 });
}

export interface ComposeProject {
  name: string;
  port: number;
  dir: string;
  /** The temporary copy of nginx/ mounted into nginx and auth: edit this one. */
  nginxDir: string;
  env: Record<string, string>;
  /** docker-compose's arguments that select this project (-p, --env-file, -f ...), for scripts that take them. */
  composeArgs: string[];
  compose(args: string[], opts?: RunOptions): Promise<RunResult>;
  composeOk(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** The container id of a service (empty when it has none). */
  containerId(service: string): Promise<string>;
  /** Health of every service's container, e.g. { nginx: 'healthy', ... } ('running' without a healthcheck). */
  health(): Promise<Record<string, string>>;
  logs(): Promise<string>;
  /** compose down -v and the temporary files. */
  destroy(): Promise<void>;
}

export const SERVICES = ['nginx', 'auth', 'demo-app', 'postgres'] as const;

/** The images docker-compose.yml builds are `image: identity-gateway-<service>`. */
export const COMPOSE_IMAGE_PREFIX = 'identity-gateway-';

export async function createComposeProject(images: BaseImages): Promise<ComposeProject> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-compose-'));
  const nginxDir = join(dir, 'nginx');
  cpSync(join(REPO, 'nginx'), nginxDir, { recursive: true });
  const port = await freePort();
  const httpsPort = await freePort();
  // One name for every run; the images it builds are named by docker-compose.yml (COMPOSE_IMAGE_PREFIX)
  // and replace the previous run's instead of piling up in the data root. Containers, networks and volumes go at the end of each run.
  const name = process.env.GATEWAY_COMPOSE_PROJECT ?? 'gwcomposetest';
  // A /28 per run, away from the default, so two runs (or a real deployment) do not collide.
  const edgeSubnet = `172.30.${200 + (process.pid % 50)}.0/28`;
  const env: Record<string, string> = {
    JWT_SECRET: strongSecret(),
    POSTGRES_PASSWORD: strongSecret(),
    PROXY_PORT: String(port),
    // Published even without TLS: a free one, so no fixed host port (8443) is taken.
    HTTPS_PORT: String(httpsPort),
    EDGE_SUBNET: edgeSubnet,
    ...images,
  };
  const lines = readFileSync(join(REPO, '.env.example'), 'utf8')
    .split('\n')
    .map((line) => {
      const m = /^([A-Z_][A-Z0-9_]*)=/.exec(line);
      return m && env[m[1]] !== undefined ? `${m[1]}=${env[m[1]]}` : line;
    });
  const envFile = join(dir, '.env');
  writeFileSync(envFile, lines.join('\n'), { mode: 0o600 });
  // Same targets as docker-compose.yml, so these mounts replace the ./nginx ones.
  const mount = `      - type: bind\n        source: ${nginxDir}\n        target: /etc/gateway/nginx\n        read_only: true\n`;
  const override = join(dir, 'override.yml');
  // Requests to the published port from this machine's loopback reach nginx from the gateway
  // address of one of its networks (docker-proxy). A fixed apps subnet keeps that client address the
  // same across `down` and `up`, as a real client's is, so sessions bound to it (SESSION_IP_BINDING)
  // stay valid.
  const appsSubnet = `172.31.${200 + (process.pid % 50)}.0/28`;
  writeFileSync(
    override,
    `services:\n  nginx:\n    volumes:\n${mount}  auth:\n    volumes:\n${mount}` + `networks:\n  apps:\n    ipam:\n      config:\n        - subnet: ${appsSubnet}\n`,
  );
  const base = ['-p', name, '--env-file', envFile, '-f', join(REPO, 'docker-compose.yml'), '-f', override];
  const compose = (args: string[], opts: RunOptions = {}) => run('docker-compose', [...base, ...args], opts);
  const composeOk = (args: string[], opts: RunOptions = {}) => runOk('docker-compose', [...base, ...args], opts);
  const containerId = async (service: string) => (await compose(['ps', '-q', service], { timeoutMs: 30_000 })).stdout.trim();
  const project: ComposeProject = {
    name,
    port,
    dir,
    nginxDir,
    env,
    composeArgs: base,
    compose,
    composeOk,
    containerId,
    async health() {
      const out: Record<string, string> = {};
      for (const s of SERVICES) {
        const id = await containerId(s);
        if (!id) {
          out[s] = 'missing';
          continue;
        }
        const r = await run('docker', ['inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', id], { timeoutMs: 30_000 });
        out[s] = r.stdout.trim() || 'unknown';
      }
      return out;
    },
    async logs() {
      const r = await compose(['logs', '--no-color', '--tail', '60'], { timeoutMs: 60_000 });
      return r.stdout + r.stderr;
    },
    async destroy() {
      await compose(['down', '-v', '--remove-orphans', '--timeout', '10'], { timeoutMs: 180_000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // A run that was killed may have left this project behind (its containers restart with the daemon,
  // and its pg-data volume holds another password): start from nothing.
  await compose(['down', '-v', '--remove-orphans', '--timeout', '5'], { timeoutMs: 180_000 });
  return project;
}

/** Waits until every service reports healthy; throws with the states and logs after `timeoutMs`. */
export async function waitHealthy(project: ComposeProject, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: Record<string, string> = {};
  while (Date.now() < deadline) {
    last = await project.health();
    if (SERVICES.every((s) => last[s] === 'healthy')) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`not all services healthy after ${timeoutMs} ms: ${JSON.stringify(last)}\n${await project.logs()}`);
}
