/**
 * Runs `make up`'s launcher (scripts/up.ts) as a child process, exactly as a user would, on free
 * ports with a temporary DATA_DIR, and collects what it prints (including the one-time passwords).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';

export interface Launched {
  baseUrl: string;
  proxyPort: number;
  dataDir: string;
  /** The launcher's own process. */
  process: ChildProcess;
  passwords: Record<string, string>;
  output(): string;
  stop(): Promise<number | null>;
}

export interface LaunchOptions {
  /** A DATA_DIR shared with other launches (kept on stop); default: a new temp dir, removed on stop. */
  dataDir?: string;
  timeoutMs?: number;
}

function spawnUp(env: Record<string, string>, dataDir: string, proxyPort: number) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, PROXY_PORT: String(proxyPort), DATA_DIR: dataDir, ...env };
  delete childEnv.DATABASE_URL;
  delete childEnv.JWT_SECRET;
  delete childEnv.JWT_SECRET_FILE;
  Object.assign(childEnv, env);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'up.ts')], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, output: () => out };
}

/** Runs `make up` that is expected to fail: its exit status and everything it printed. */
export async function runUpToExit(env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-up-'));
  const { child, exited, output } = spawnUp(env, dataDir, Number(env.PROXY_PORT ?? (await freePort())));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  rmSync(dataDir, { recursive: true, force: true });
  return { code, output: output() };
}

export async function launchUp(env: Record<string, string> = {}, opts: LaunchOptions = {}): Promise<Launched> {
  const timeoutMs = opts.timeoutMs ?? 90_000;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'gw-up-'));
  const removeDataDir = () => {
    if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  const proxyPort = await freePort();
  const { child, exited, output } = spawnUp(env, dataDir, proxyPort);
  let out = '';
  const refresh = () => (out = output());

  const deadline = Date.now() + timeoutMs;
  while (!/Gateway ready on/.test(refresh())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      removeDataDir();
      throw new Error(`make up did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const passwords: Record<string, string> = {};
  for (const m of out.matchAll(/demo-user (\S+) (\S+)/g)) passwords[m[1]] = m[2];
  return {
    baseUrl: `http://127.0.0.1:${proxyPort}`,
    proxyPort,
    dataDir,
    process: child,
    passwords,
    output,
    async stop() {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      removeDataDir();
      return code;
    },
  };
}
