/**
 * `make bench`, second part: CPU instructions per request, counted by valgrind (callgrind), for this
 * checkout and a baseline revision in the same run. Unlike requests/s on a shared machine, the count
 * does not move with load (two runs agree within ~0.1 %), so a regression of 1 % shows.
 *
 * For each tree (this checkout, then BENCH_BASELINE's) and each scenario (the gate with no policy,
 * with the 10-rule and with the 1,000-rule policy of bench/access-policies.ts, and (i) a location
 * naming one app of a 20-app policy, each app with the 10 rules; a baseline without apps runs (i) as
 * (d), with no app named):
 * - the tree's own nginx/ is rendered into a temporary prefix with the tree's own njs bundle, a gate
 *   config its own loadConfig + buildGateConfig wrote, its compiled bench policy and a session token
 *   its own issueSessionToken signed; the site is bench/run.ts's gate server (b) plus an upstream
 *   server answering from memory, in the same nginx;
 * - nginx runs under callgrind with one process (`master_process off`); after 50 warm-up requests
 *   (each must be a 200 from the upstream) the counters are zeroed, BENCH_INSTR_REQUESTS sequential
 *   keep-alive requests are sent, and the dump is divided by their number.
 * The count covers all of nginx's work for a request: the gate's server, the proxy and the upstream.
 * Then peer (g), the Lua gate of bench/peers.ts, is counted the same way (this checkout only).
 * (bA), (dA) and (iA) are (b), (d) and (i) with the signed identity assertion on (ASSERTION_KEY_FILE,
 * issue 12): the session token and the measured app's assertion cookie bound to it, as a browser
 * sends them; this checkout only, each printed with its change from the same scenario without it
 * and from the baseline's.
 *
 * Env: BENCH_BASELINE (a git revision; default 123d0a8, the gate before the issue 8 hardening;
 * `none` skips it), BENCH_INSTR_REQUESTS (default 500). Needs valgrind (`make deps-test`) and, for the
 * baseline, this checkout's git history (a worktree of the revision is built in a temporary folder).
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, freePort, waitForPort } from '../scripts/lib/nginx-runtime.js';
import { MEASURED_PATH } from './access-policies.js';
import { BENCH_COOKIE, luaPeerMissing, writeLuaPeerPrefix } from './peers.js';

const DEFAULT_BASELINE = '123d0a8';
const baseline = (process.env.BENCH_BASELINE ?? DEFAULT_BASELINE).trim();
const requests = Number(process.env.BENCH_INSTR_REQUESTS ?? 500);
const WARM_UP = 50;

const SCENARIOS: Array<{ key: string; label: string; rules: number; apps: number; assertion?: boolean; versus?: string }> = [
  { key: 'b', label: '(b) gate, no policy', rules: 0, apps: 0 },
  { key: 'd', label: '(d) gate, 10-rule policy', rules: 10, apps: 0 },
  { key: 'e', label: '(e) gate, 1,000-rule policy', rules: 1000, apps: 0 },
  // Issue 12: the location names one app of 20, each with the 10 rules of (d). A tree without apps
  // (the baseline) is measured with (d)'s policy and no app: what the apps replace.
  { key: 'i', label: '(i) gate, 1 app of 20 x 10', rules: 10, apps: 20 },
  // The signed identity assertion on (ASSERTION_KEY_FILE, issue 12): this checkout only (older trees
  // have no assertion); each printed with its change from the same scenario without it.
  { key: 'bA', label: '(bA) (b) + assertion', rules: 0, apps: 0, assertion: true, versus: 'b' },
  { key: 'dA', label: '(dA) (d) + assertion', rules: 10, apps: 0, assertion: true, versus: 'd' },
  { key: 'iA', label: '(iA) (i) + assertion', rules: 10, apps: 20, assertion: true, versus: 'i' },
];

/** Imports a module of `root` (this checkout or the baseline's worktree) by its repo path. */
async function importFrom<T>(root: string, rel: string): Promise<T> {
  return (await import(pathToFileURL(join(root, rel)).href)) as T;
}

function site(gatePort: number, upstreamPort: number, app: string): string {
  return `
upstream bench_upstream { server 127.0.0.1:${upstreamPort}; keepalive 64; }
upstream auth_service { server 127.0.0.1:9; }
server { listen 127.0.0.1:${upstreamPort}; access_log off; location / { return 200 "hello from upstream\\n"; } }
server {
    listen 127.0.0.1:${gatePort};
    access_log off;
    include snippets/gate-server.conf;
    location / {
${app === '' ? '' : `        set $gate_app ${app};\n`}        include snippets/protect.conf;
        proxy_pass http://bench_upstream;
    }
}
`;
}

/**
 * Renders `root`'s nginx config for one scenario; returns the session cookie and the app measured
 * ('' when the tree has no apps, or the scenario none).
 */
async function prepare(root: string, dir: string, rules: number, apps: number, gatePort: number, upstreamPort: number, secret: string, assertion = false): Promise<{ cookie: string; app: string }> {
  type Runtime = { prepareNginxPrefix(o: unknown): { prefix: string; gateConfigFile: string } };
  type ConfigModule = { loadConfig(env: Record<string, string>): { ok: boolean; config?: unknown; errors?: string[] } };
  type GateConfigModule = { buildGateConfig(c: unknown, now?: number): unknown; writeGateConfig(f: string, g: unknown): Promise<void> };
  type Policies = {
    compileBenchPolicy(n: number, now: number): unknown;
    compileBenchAppsPolicy?: (apps: number, n: number, now: number) => unknown;
    MEASURED_APP?: string;
  };
  const policies = await importFrom<Policies>(root, 'bench/access-policies.ts');
  // Trees from before issue 12 have no apps: they run (d)'s policy for the apps scenario.
  const app = apps > 0 && policies.compileBenchAppsPolicy !== undefined && policies.MEASURED_APP !== undefined ? policies.MEASURED_APP : '';
  type PolicyRuntime = { POLICY_OFF: unknown };
  type Tokens = { issueSessionToken(input: unknown): { token: string; claims: Record<string, unknown> } };
  const runtime = await importFrom<Runtime>(root, 'scripts/lib/nginx-runtime.ts');
  const { prefix, gateConfigFile } = runtime.prepareNginxPrefix({
    prefix: dir,
    vars: { PROXY_LISTEN: `127.0.0.1:${await freePort()}`, APP_UPSTREAM: '127.0.0.1:9', AUTH_UPSTREAM: '127.0.0.1:9' },
    extraFiles: { 'sites/bench.conf': site(gatePort, upstreamPort, app) },
  });
  rmSync(join(prefix, 'conf', 'sites', 'gateway.conf'));
  // One process, in the foreground, so that callgrind sees every request.
  const confFile = join(prefix, 'conf', 'nginx.conf');
  const conf = readFileSync(confFile, 'utf8');
  if (!/^worker_processes auto;$/m.test(conf)) throw new Error(`${confFile}: no 'worker_processes auto;' line to replace`);
  writeFileSync(confFile, conf.replace(/^worker_processes auto;$/m, 'worker_processes 1; daemon off; master_process off;'));

  // The gate config as each tree's own auth service writes it (the format changes between revisions).
  const keyFile = join(dir, 'assertion-key.pem');
  if (assertion) writeFileSync(keyFile, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const loaded = (await importFrom<ConfigModule>(root, 'auth-service/src/config.ts')).loadConfig({
    JWT_SECRET: secret,
    DATABASE_URL: 'postgres://bench@127.0.0.1:9/bench',
    AUTH_COOKIE_SECURE: 'false',
    ...(assertion ? { ASSERTION_KEY_FILE: keyFile } : {}),
  });
  if (!loaded.ok) throw new Error(`${root}: loadConfig refused the bench settings: ${(loaded.errors ?? []).join('; ')}`);
  const gateConfig = await importFrom<GateConfigModule>(root, 'auth-service/src/services/gate-config.ts');
  await gateConfig.writeGateConfig(gateConfigFile, gateConfig.buildGateConfig(loaded.config, Math.floor(Date.now() / 1000)));
  const now = Math.floor(Date.now() / 1000);
  const policy =
    app !== ''
      ? policies.compileBenchAppsPolicy!(apps, rules, now)
      : rules > 0
        ? policies.compileBenchPolicy(rules, now)
        : (await importFrom<PolicyRuntime>(root, 'auth-service/src/policy/policy-runtime.ts')).POLICY_OFF;
  writeFileSync(join(prefix, 'conf', 'runtime', 'policy.json'), JSON.stringify(policy));
  // kirk is in Federation, which every bench policy allows on the measured path. groupSelection is
  // ignored by revisions that predate it.
  const { token, claims } = (await importFrom<Tokens>(root, 'auth-service/src/services/session-token.ts')).issueSessionToken({
    identity: { sub: '00000000-0000-4000-8000-000000000001', username: 'kirk', name: 'James T. Kirk', email: 'kirk@enterprise.example', groups: ['Federation'], src: 'local' },
    ip: '127.0.0.1',
    secret,
    ttlSeconds: 3600,
    now: Date.now(),
    groupSelection: { policyGroups: new Set<string>(), payload: { all: true, exact: [], prefixes: [] } },
  });
  if (!assertion) return { cookie: `gw_session=${token}`, app };
  // As a browser sends them with assertions on: the session token and the measured app's assertion
  // (gw_session_asr, or gw_session_asr_<app>), bound to that token.
  type Assertions = { signAssertion(c: unknown, token: string, claims: unknown, app: string, now: number): string };
  const assertions = await importFrom<Assertions>(root, 'auth-service/src/services/assertion.ts');
  const asr = assertions.signAssertion((loaded.config as { assertion: unknown }).assertion, token, claims, app, now);
  return { cookie: `gw_session=${token}; gw_session_asr${app === '' ? '' : '_' + app}=${asr}`, app };
}

/** Sends `n` sequential GETs on one keep-alive connection; each must be the upstream's 200. */
async function send(port: number, n: number, cookie: string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < n; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: MEASURED_PATH, agent, headers: { cookie, accept: 'text/html' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`))));
        });
        req.on('error', reject);
      });
      if (body !== 'hello from upstream\n') throw new Error(`unexpected body: ${body.slice(0, 200)}`);
    }
  } finally {
    agent.destroy();
  }
}

/** The `summary:` of the newest callgrind dump of `outFile` (the one `callgrind_control -d` wrote). */
function dumpedInstructions(outFile: string): number {
  const dir = join(outFile, '..');
  const base = outFile.slice(dir.length + 1);
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(base + '.') && /\.\d+$/.test(f))
    .sort((a, b) => Number(a.slice(a.lastIndexOf('.') + 1)) - Number(b.slice(b.lastIndexOf('.') + 1)));
  if (dumps.length === 0) throw new Error(`callgrind wrote no dump next to ${outFile}`);
  const m = /^summary: (\d+)$/m.exec(readFileSync(join(dir, dumps[dumps.length - 1]), 'utf8'));
  if (!m) throw new Error(`no summary line in ${dumps[dumps.length - 1]}`);
  return Number(m[1]);
}

function control(args: string[]): void {
  const r = spawnSync('callgrind_control', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Instructions per request of one prepared prefix. */
async function measure(prefix: string, gatePort: number, cookie: string): Promise<number> {
  const outFile = join(prefix, 'callgrind.out');
  const vg = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${outFile}`, '/usr/sbin/nginx', '-p', prefix + '/', '-c', 'conf/nginx.conf', '-e', join(prefix, 'logs', 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  vg.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => vg.on('exit', () => resolve()));
  try {
    let gone = false;
    void exited.then(() => (gone = true));
    await Promise.race([waitForPort(gatePort, 120_000), exited.then(() => Promise.reject(new Error('nginx exited under valgrind')))]);
    if (gone) throw new Error('nginx exited under valgrind');
    await send(gatePort, WARM_UP, cookie);
    control(['-z', String(vg.pid)]);
    await send(gatePort, requests, cookie);
    control(['-d', String(vg.pid)]);
    return dumpedInstructions(outFile) / requests;
  } catch (e) {
    throw new Error(`${(e as Error).message}\nvalgrind: ${stderr.slice(-2000)}`);
  } finally {
    vg.kill('SIGQUIT');
    await exited;
  }
}

/** A worktree of `rev` with its njs bundle built, or null (with the reason printed) when there is none. */
function baselineTree(tmp: string): string | null {
  if (baseline === '' || baseline === 'none') return null;
  const dir = join(tmp, 'baseline');
  const add = spawnSync('git', ['-C', REPO_ROOT, 'worktree', 'add', '--detach', dir, baseline], { encoding: 'utf8' });
  if (add.status !== 0) {
    console.log(`baseline ${baseline}: not measured (${(add.stderr || '').trim().split('\n').pop()})`);
    return null;
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  const build = spawnSync(process.execPath, [join(dir, 'scripts', 'build-njs.mjs')], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`baseline ${baseline}: njs build failed: ${build.stderr}`);
  return dir;
}

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).error) throw new Error('valgrind is not installed: run `make deps-test`');
  if (!existsSync(join(REPO_ROOT, 'njs', 'dist', 'gate.js'))) throw new Error('njs/dist/gate.js is missing: run `make build`');
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-instr-'));
  let base: string | null = null;
  try {
    base = baselineTree(tmp);
    const secret = randomBytes(48).toString('base64url');
    const trees: Array<{ name: string; root: string }> = [{ name: 'this checkout', root: REPO_ROOT }];
    if (base !== null) trees.push({ name: `baseline ${baseline}`, root: base });
    const results: Record<string, Record<string, number>> = {};
    const measuredApp: Record<string, Record<string, string>> = {};
    let sessionCookie = '';
    for (const tree of trees) {
      results[tree.name] = {};
      measuredApp[tree.name] = {};
      for (const s of SCENARIOS) {
        if (s.assertion && tree !== trees[0]) continue;
        const gatePort = await freePort();
        const upstreamPort = await freePort();
        const dir = join(tmp, `${tree === trees[0] ? 'current' : 'base'}-${s.key}`);
        const { cookie, app } = await prepare(tree.root, dir, s.rules, s.apps, gatePort, upstreamPort, secret, s.assertion === true);
        measuredApp[tree.name][s.key] = app;
        if (tree === trees[0] && s.key === 'b') sessionCookie = cookie;
        results[tree.name][s.key] = await measure(dir, gatePort, cookie);
      }
    }
    // Peer (g), the Lua gate of bench/peers.ts, counted the same way with the same session (the
    // steady form of bench/run.ts's CPU per request for it).
    const luaMissing = luaPeerMissing();
    let lua: number | null = null;
    if (luaMissing === null) {
      const port = await freePort();
      const upstreamPort = await freePort();
      const token = sessionCookie.slice(sessionCookie.indexOf('=') + 1);
      const prefix = join(tmp, 'lua');
      writeLuaPeerPrefix(prefix, { port, upstreamPort, serveUpstream: true, singleProcess: true, token: { secret, header: token.split('.')[0], cookie: BENCH_COOKIE, leeway: 30, maxAge: 3600 } });
      lua = await measure(prefix, port, sessionCookie);
    }
    console.log(`\nCPU instructions per request (valgrind callgrind, ${requests} keep-alive requests after ${WARM_UP} warm-up; nginx's whole work: gate, proxy, upstream)`);
    for (const s of SCENARIOS) {
      const cur = results['this checkout'][s.key];
      let line = `  ${s.label.padEnd(30)} ${Math.round(cur).toLocaleString('en-US').padStart(9)}`;
      if (s.versus !== undefined) {
        const off = results['this checkout'][s.versus];
        const change = ((cur - off) / off) * 100;
        line += `   without   ${Math.round(off).toLocaleString('en-US').padStart(9)}   ${change >= 0 ? '+' : ''}${change.toFixed(1)} %`;
        if (base !== null) {
          const old = results[`baseline ${baseline}`][s.versus];
          const vsBase = ((cur - old) / old) * 100;
          line += `; baseline's ${s.versus} ${vsBase >= 0 ? '+' : ''}${vsBase.toFixed(1)} %`;
        }
      } else if (base !== null) {
        const old = results[`baseline ${baseline}`][s.key];
        const change = ((cur - old) / old) * 100;
        line += `   baseline ${Math.round(old).toLocaleString('en-US').padStart(9)}   ${change >= 0 ? '+' : ''}${change.toFixed(1)} %`;
        if (s.apps > 0 && measuredApp[`baseline ${baseline}`][s.key] === '') line += ' (baseline has no apps: its 10-rule policy)';
      }
      console.log(line);
    }
    if (lua === null) console.log(`  (g) Lua peer: skipped, ${luaMissing}`);
    else console.log(`  ${'(g) Lua peer (bench/peers.ts)'.padEnd(30)} ${Math.round(lua).toLocaleString('en-US').padStart(9)}   the gate (b) runs ${(results['this checkout'].b / lua).toFixed(2)}x its instructions`);
  } finally {
    if (base !== null) spawnSync('git', ['-C', REPO_ROOT, 'worktree', 'remove', '--force', base]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench/instructions: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
