/**
 * Runs the repo's own nginx config from a private prefix: used by `make up`, the integration and
 * browser tests, and the benchmark, so all of them exercise exactly the files operators mount.
 *
 * Prefix layout:
 *   PREFIX/conf/                 rendered copy of nginx/ (*.template files substituted)
 *   PREFIX/conf/njs/gate.js      the njs bundle (njs/dist/gate.js)
 *   PREFIX/conf/runtime/gate-config.json   written by the auth service (GATE_CONFIG_FILE)
 *   PREFIX/logs/, PREFIX/temp/
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';

/** The only placeholders substituted in nginx/**\/*.template (nginx's own $variables are untouched). */
export interface NginxTemplateVars {
  PROXY_LISTEN: string;
  APP_UPSTREAM: string;
  AUTH_UPSTREAM: string;
  /** Tableau /api/ pass-through: proxy read/send timeout, whole seconds (default in NGINX_SETTING_DEFAULTS). */
  TABLEAU_API_TIMEOUT_SECONDS?: string;
  /** Tableau /api/ pass-through: request body limit, whole MiB. */
  TABLEAU_API_MAX_BODY_MB?: string;
}

const TEMPLATE_VARS: ReadonlyArray<keyof NginxTemplateVars> = [
  'PROXY_LISTEN',
  'APP_UPSTREAM',
  'AUTH_UPSTREAM',
  'TABLEAU_API_TIMEOUT_SECONDS',
  'TABLEAU_API_MAX_BODY_MB',
];

/**
 * nginx settings that come from the environment, with their defaults and bounds. 300 s: a publish
 * or a large query takes longer than the sign-in calls TABLEAU_TIMEOUT_MS bounds. 64 MiB: the
 * largest file Tableau accepts in one publish request (bigger ones go in 64 MiB upload-session parts).
 * docker/nginx-entrypoint.sh applies the same defaults and bounds.
 */
export const NGINX_SETTINGS = {
  TABLEAU_API_TIMEOUT_SECONDS: { default: '300', min: 1, max: 3600 },
  TABLEAU_API_MAX_BODY_MB: { default: '64', min: 1, max: 4096 },
} as const;

type NginxSettingName = keyof typeof NGINX_SETTINGS;

/**
 * Reads the NGINX_SETTINGS variables from `env` (unset or empty: the default). Returns every problem
 * at once (variable, rule, value received); the values are whole numbers, so nothing in them can
 * end an nginx directive.
 */
export function nginxSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: Record<NginxSettingName, string>; problems: string[] } {
  const settings = {} as Record<NginxSettingName, string>;
  const problems: string[] = [];
  for (const name of Object.keys(NGINX_SETTINGS) as NginxSettingName[]) {
    const rule = NGINX_SETTINGS[name];
    const raw = env[name];
    const value = raw === undefined || raw === '' ? rule.default : raw;
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) < rule.min || Number(value) > rule.max) {
      problems.push(`${name}: must be a whole number from ${rule.min} to ${rule.max} (received ${JSON.stringify(raw)})`);
    }
    settings[name] = value;
  }
  return { settings, problems };
}

/**
 * Substitutes the TEMPLATE_VARS placeholders (an unset setting gets its NGINX_SETTINGS default);
 * leaves every other `$` alone.
 */
export function renderTemplate(text: string, vars: NginxTemplateVars): string {
  let out = text;
  for (const name of TEMPLATE_VARS) {
    const value = vars[name] ?? (name in NGINX_SETTINGS ? NGINX_SETTINGS[name as NginxSettingName].default : undefined);
    if (value === undefined) throw new Error(`nginx template value ${name} missing`);
    out = out.split('${' + name + '}').join(value);
  }
  return out;
}

export interface PrepareOptions {
  prefix: string;
  vars: NginxTemplateVars;
  /** Source config folder; defaults to the repo's nginx/. */
  sourceDir?: string;
  /** The njs bundle; defaults to njs/dist/gate.js (run `npm run build` first). */
  njsBundle?: string;
  /** Extra files to drop into conf/ (relative path → content), e.g. benchmark sites. */
  extraFiles?: Record<string, string>;
}

/**
 * Renders nginx/ into PREFIX/conf.next: templates substituted, the njs bundle copied in, and the
 * current conf/runtime/ (the gate config the auth service wrote) carried over. Nothing live changes.
 */
export function stageNginxConf(opts: PrepareOptions): string {
  const prefix = resolve(opts.prefix);
  const conf = join(prefix, 'conf');
  const next = join(prefix, 'conf.next');
  const sourceDir = opts.sourceDir ?? join(REPO_ROOT, 'nginx');
  const bundle = opts.njsBundle ?? join(REPO_ROOT, 'njs', 'dist', 'gate.js');
  if (!existsSync(bundle)) {
    throw new Error(`njs bundle not found at ${bundle}: run \`npm run build\` first`);
  }
  rmSync(next, { recursive: true, force: true });
  for (const dir of [prefix, join(prefix, 'logs'), join(prefix, 'temp')]) mkdirSync(dir, { recursive: true });
  cpSync(sourceDir, next, { recursive: true });
  mkdirSync(join(next, 'njs'), { recursive: true });
  mkdirSync(join(next, 'runtime'), { recursive: true });
  renderTemplatesIn(next, opts.vars);
  cpSync(bundle, join(next, 'njs', 'gate.js'));
  if (existsSync(join(conf, 'runtime'))) cpSync(join(conf, 'runtime'), join(next, 'runtime'), { recursive: true });
  for (const [rel, content] of Object.entries(opts.extraFiles ?? {})) {
    writeFileSync(join(next, rel), content);
  }
  writeFileSync(join(prefix, 'template-vars.json'), JSON.stringify(opts.vars, null, 2) + '\n');
  // Workers run as an unprivileged user when the master is root: they must traverse the prefix to
  // serve the error pages. Secrets (runtime/gate-config.json) stay 0600 and are read by the master.
  for (const dir of [prefix, next, join(next, 'errors')]) chmodSync(dir, 0o755);
  ensureWorkersCanTraverse(prefix);
  return next;
}

/**
 * As root, nginx's workers (user nobody) must be able to walk down to PREFIX/conf/errors, or the
 * branded error pages turn into nginx's bare ones. The prefix's own parent (DATA_DIR, a temp dir) gets
 * search permission for others (no listing, no reading: 0711 at most); a directory further up that is
 * closed is reported on stderr, not changed.
 */
function ensureWorkersCanTraverse(prefix: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const parent = dirname(prefix);
  const mode = statSync(parent).mode & 0o777;
  if ((mode & 0o001) === 0) chmodSync(parent, mode | 0o011);
  for (let dir = dirname(parent); dir !== dirname(dir); dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      console.error(`warning: ${dir} is not searchable by others: nginx's workers cannot read ${join(prefix, 'conf', 'errors')}, so error pages fall back to nginx's own. Move DATA_DIR elsewhere or \`chmod o+x ${dir}\`.`);
      return;
    }
  }
}

/** Problems with the runtime JSON files nginx preloads (see testNginxConfig). */
function runtimeJsonProblems(confDir: string): string[] {
  const dir = join(confDir, 'runtime');
  if (!existsSync(dir)) return [];
  const problems: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (err) {
      problems.push(`runtime/${name} is not valid JSON (${(err as Error).message})`);
    }
  }
  return problems;
}

/** Makes PREFIX/conf.next the live conf/ (the old one is removed). */
export function activateStagedConf(prefix: string): void {
  const conf = join(prefix, 'conf');
  const prev = join(prefix, 'conf.prev');
  rmSync(prev, { recursive: true, force: true });
  if (existsSync(conf)) renameSync(conf, prev);
  renameSync(join(prefix, 'conf.next'), conf);
  rmSync(prev, { recursive: true, force: true });
}

/** Renders nginx/ into PREFIX/conf and returns the path the auth service must write the gate config to. */
export function prepareNginxPrefix(opts: PrepareOptions): { prefix: string; gateConfigFile: string } {
  const prefix = resolve(opts.prefix);
  stageNginxConf(opts);
  activateStagedConf(prefix);
  return { prefix, gateConfigFile: join(prefix, 'conf', 'runtime', 'gate-config.json') };
}

/**
 * Records which policy file `make up` compiled (null: none), so that `make reload` recompiles the
 * same one unless POLICY_FILE says otherwise.
 */
export function writePolicySource(prefix: string, file: string | null): void {
  writeFileSync(join(prefix, 'policy-source.json'), JSON.stringify({ file }) + '\n');
}

/** The policy file recorded by writePolicySource, or null (none, or never recorded). */
export function readPolicySource(prefix: string): string | null {
  const at = join(prefix, 'policy-source.json');
  if (!existsSync(at)) return null;
  const parsed = JSON.parse(readFileSync(at, 'utf8')) as { file?: unknown };
  return typeof parsed.file === 'string' ? parsed.file : null;
}

/** The template values the prefix was last rendered with (for `make reload`). */
export function readTemplateVars(prefix: string): NginxTemplateVars {
  return JSON.parse(readFileSync(join(prefix, 'template-vars.json'), 'utf8')) as NginxTemplateVars;
}

function renderTemplatesIn(dir: string, vars: NginxTemplateVars): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      renderTemplatesIn(path, vars);
    } else if (name.endsWith('.template')) {
      writeFileSync(path.slice(0, -'.template'.length), renderTemplate(readFileSync(path, 'utf8'), vars));
      rmSync(path);
    }
  }
}

function nginxArgs(prefix: string, confDir = 'conf'): string[] {
  return ['-p', prefix + '/', '-c', `${confDir}/nginx.conf`, '-e', join(prefix, 'logs', 'error.log')];
}

/**
 * `nginx -t` on the prefix (or on its staged conf.next); returns nginx's own message. The runtime JSON
 * files are parsed first, because njs 0.7.9 fails `nginx -t` on bad JSON without naming the file.
 */
export function testNginxConfig(prefix: string, confDir: 'conf' | 'conf.next' = 'conf'): { ok: boolean; output: string } {
  const jsonProblems = runtimeJsonProblems(join(prefix, confDir));
  if (jsonProblems.length > 0) return { ok: false, output: jsonProblems.join('\n') };
  const res = spawnSync(NGINX_BIN, [...nginxArgs(prefix, confDir), '-t', '-q'], { encoding: 'utf8' });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}`.trim() };
}

export interface RunningNginx {
  prefix: string;
  process: ChildProcess;
  /** Re-render nginx/ and reload gracefully; an invalid config is refused and the old one keeps serving. */
  reload(opts?: Partial<PrepareOptions>): { ok: boolean; output: string };
  stop(): Promise<void>;
  errorLog(): string;
  accessLog(): string;
}

/** Starts nginx in the foreground (daemon off) and waits until it accepts connections on `port`. */
export async function startNginx(prefix: string, port: number, timeoutMs = 10_000, env?: NodeJS.ProcessEnv): Promise<RunningNginx> {
  const check = testNginxConfig(prefix);
  if (!check.ok) throw new Error(`nginx config test failed:\n${check.output}`);
  // `env` (tests only) replaces nginx's environment, e.g. to run it under libfaketime.
  const child = spawn(NGINX_BIN, [...nginxArgs(prefix), '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'], env: env ?? process.env });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const readLog = (name: string) => {
    const p = join(prefix, 'logs', name);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  };
  await waitForPort(port, timeoutMs, () => child.exitCode !== null, () => readLog('error.log'));
  return {
    prefix,
    process: child,
    reload: (opts = {}) => reloadNginx({ prefix, vars: readTemplateVars(prefix), ...opts }),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
    errorLog: () => readLog('error.log'),
    accessLog: () => readLog('access.log'),
  };
}

export async function waitForPort(
  port: number,
  timeoutMs: number,
  hasDied: () => boolean = () => false,
  diagnostics: () => string = () => '',
): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (hasDied() || Date.now() > deadline) {
      throw new Error(`nothing listening on 127.0.0.1:${port}${hasDied() ? ' (process exited)' : ''}\n${diagnostics()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/**
 * Re-renders the config, tests it, and only then swaps it in and signals a graceful reload
 * (`nginx -s reload`: old workers finish their connections). A config that fails `nginx -t`, such as
 * a broken gate config or njs bundle, is refused with nginx's message; the running one keeps serving.
 */
export function reloadNginx(opts: PrepareOptions): { ok: boolean; output: string } {
  const prefix = resolve(opts.prefix);
  stageNginxConf(opts);
  const staged = testNginxConfig(prefix, 'conf.next');
  if (!staged.ok) {
    rmSync(join(prefix, 'conf.next'), { recursive: true, force: true });
    return { ok: false, output: `new config refused, the running one keeps serving:\n${staged.output}` };
  }
  activateStagedConf(prefix);
  const res = spawnSync(NGINX_BIN, [...nginxArgs(prefix), '-s', 'reload'], { encoding: 'utf8' });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}`.trim() || 'reloaded' };
}
