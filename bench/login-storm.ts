/**
 * `make bench`, fourth part: a sign-in storm (issue 11, item 4). Signed-in throughput through the
 * gate with and without 50 concurrent sign-ins at full PBKDF2 cost, interleaved, and the ratio
 * (target: >= 0.90).
 *
 * The real parts, on loopback: the repo's gateway site (prepareNginxPrefix) with the app upstream an
 * nginx server answering from memory; the auth service (auth-service/src/main.ts) in a child
 * process with its defaults (LOGIN_HASH_CONCURRENCY, LOGIN_HASH_QUEUE, UV_THREADPOOL_SIZE), except
 * the login rate limits, raised so that every storm sign-in reaches the password check (the worst
 * case: a storm from many addresses and names); a fresh PostgreSQL database. Signed-in load: wrk
 * with one valid session cookie (the gate alone decides; no auth-service call). The storm: another
 * process (this file with --storm) keeping BENCH_STORM (default 50) sign-ins in flight, each from
 * its own loopback address (127.0.1.x, so nginx's per-address limit_req does not absorb it), each
 * with the right password of its own user: every admitted one costs a full PBKDF2 verification, a
 * session row and its audit row. The storm's process runs at nice BENCH_STORM_NICE (default 19):
 * it stands for clients on other machines. Prints req/s and p99 of both, the ratio, the storm's answers
 * (302 signed in, 503 hashing cap, 429) and the CPU per signed-in request of nginx and the service.
 * Env: BENCH_DURATION, BENCH_ROUNDS, BENCH_CONNECTIONS (bench/load.ts), BENCH_STORM, BENCH_STORM_NICE,
 * LOGIN_HASH_CONCURRENCY / LOGIN_HASH_QUEUE / LOGIN_HASH_NICE (passed to the service when set),
 * TEST_PG_ADMIN_URL. Needs wrk.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../auth-service/src/passwords/index.js';
import { createPool, runMigrations } from '../auth-service/src/storage/db.js';
import { createUsersRepo } from '../auth-service/src/storage/users-repo.js';
import { REPO_ROOT, startNginx, waitForPort } from '../scripts/lib/nginx-runtime.js';
import { prepareBenchGateway, spawnBenchAuthService, stopChild } from './bench-gateway.js';
import { createFreshDatabase, type FreshDatabase } from '../tests/support/fresh-database.js';
import { hiddenFields, rawRequest, setCookies } from '../tests/support/http.js';
import { childPids, duration, median, requireWrk, rounds, runWrk, type Sample } from './load.js';

const STORM = Number(process.env.BENCH_STORM ?? 50);
const PASSWORD = 'bench storm password 11';
const PATH = '/reports/q3';
const HIGH_LIMIT = '100000/60';
const STORM_CLIENT_NICE = Number(process.env.BENCH_STORM_NICE ?? 19);

/** One sign-in from `address`: the form, then the POST. Returns the status (0: no answer). */
async function signIn(port: number, address: string, username: string): Promise<number> {
  try {
    const form = await rawRequest(port, 'GET', '/login', { accept: 'text/html' }, undefined, address);
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='));
    if (csrf === undefined) return form.status;
    const body = new URLSearchParams({ ...hiddenFields(form.body), username, password: PASSWORD }).toString();
    const res = await rawRequest(port, 'POST', '/login', { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: `http://127.0.0.1:${port}` }, body, address);
    return res.status;
  } catch {
    return 0;
  }
}

/** --storm PORT SECONDS: STORM sign-in loops for SECONDS; prints "ready", then the answers as JSON. */
async function storm(port: number, seconds: number): Promise<void> {
  const counts: Record<number, number> = {};
  const until = Date.now() + seconds * 1000;
  let first = 0;
  const loops = Array.from({ length: STORM }, async (_, i) => {
    const address = `127.0.1.${i + 1}`;
    while (Date.now() < until) {
      const status = await signIn(port, address, `storm${i}`);
      counts[status] = (counts[status] ?? 0) + 1;
      if (++first === STORM) console.log('ready');
    }
  });
  // wrk starts once the storm is under way (first answers are in), not before.
  await Promise.all(loops);
  console.log(JSON.stringify(counts));
}

function startStorm(port: number, seconds: number): { ready: Promise<void>; done: Promise<Record<number, number>>; child: ChildProcess } {
  // The storm's clients stand for machines elsewhere: at the lowest CPU priority here, so they take
  // what nginx, the service and wrk leave (their CPU is printed as "storm client").
  const child = spawn('nice', ['-n', String(STORM_CLIENT_NICE), process.execPath, '--import', 'tsx', join(REPO_ROOT, 'bench', 'login-storm.ts'), '--storm', String(port), String(seconds)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('ready\n')) markReady();
  });
  const done = new Promise<Record<number, number>>((resolve, reject) =>
    child.once('exit', (code) => {
      markReady();
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) reject(new Error(`the storm process failed (${code}):\n${out}`));
      else resolve(JSON.parse(last) as Record<number, number>);
    }),
  );
  return { ready, done, child };
}

async function main(): Promise<void> {
  requireWrk();
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-storm-'));
  let db: FreshDatabase | null = null;
  let pool: ReturnType<typeof createPool> | null = null;
  let auth: ChildProcess | null = null;
  let stopNginx = async () => {};
  const authLog = join(tmp, 'auth-service.log');
  try {
    db = await createFreshDatabase();
    pool = createPool(db.url);
    await runMigrations(pool);
    // One full-cost hash for all users: the storm pays full cost per sign-in; the setup does not.
    const passwordHash = await createPasswordHasher(DEFAULT_PASSWORD_POLICY).hash(PASSWORD);
    const users = createUsersRepo(pool);
    for (let i = 0; i < STORM; i++) await users.create({ username: `storm${i}`, passwordHash, groups: [], email: null, fullName: null });
    await users.create({ username: 'kirk', passwordHash, groups: ['Federation'], email: null, fullName: null });

    const gateway = await prepareBenchGateway(join(tmp, 'nginx'));
    const { ports, prefix } = gateway;
    auth = spawnBenchAuthService(gateway, authLog, {
      DATABASE_URL: db.url,
      JWT_SECRET: randomBytes(48).toString('base64url'),
      SESSION_TOKEN_TTL_SECONDS: '3600',
      LOGIN_RATE_LIMIT_IP: HIGH_LIMIT,
      LOGIN_RATE_LIMIT_USER: '100000/3600',
      LOGIN_RATE_LIMIT_USER_IP: '100000/3600',
      LOG_LEVEL: 'warn',
      ...(process.env.LOGIN_HASH_CONCURRENCY ? { LOGIN_HASH_CONCURRENCY: process.env.LOGIN_HASH_CONCURRENCY } : {}),
      ...(process.env.LOGIN_HASH_QUEUE ? { LOGIN_HASH_QUEUE: process.env.LOGIN_HASH_QUEUE } : {}),
      ...(process.env.LOGIN_HASH_NICE ? { LOGIN_HASH_NICE: process.env.LOGIN_HASH_NICE } : {}),
    });
    await waitForPort(ports.auth, 30_000, () => auth!.exitCode !== null);
    const nginx = await startNginx(prefix, ports.proxy);
    stopNginx = () => nginx.stop();
    const nginxPid = nginx.process.pid!;
    const authPid = auth.pid!;
    let stormPid: number | undefined;
    const cpu = { nginx: () => childPids(nginxPid), auth: () => [authPid], storm: () => (stormPid === undefined ? [] : [stormPid, ...childPids(stormPid)]) };

    // A real sign-in gives the session the signed-in load uses.
    const form = await rawRequest(ports.proxy, 'GET', '/login', { accept: 'text/html' });
    const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='));
    if (csrf === undefined) throw new Error(`no sign-in form (${form.status})`);
    const body = new URLSearchParams({ ...hiddenFields(form.body), username: 'kirk', password: PASSWORD }).toString();
    const signedIn = await rawRequest(ports.proxy, 'POST', '/login', { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: `http://127.0.0.1:${ports.proxy}` }, body);
    const session = setCookies(signedIn).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_session='));
    if (session === undefined) throw new Error(`the bench user could not sign in (${signedIn.status})`);
    const check = await rawRequest(ports.proxy, 'GET', PATH, { cookie: session });
    if (check.status !== 200 || check.body !== 'hello from upstream\n') throw new Error(`the session does not pass the gate: ${check.status}`);
    const target = { port: ports.proxy, path: PATH, headers: { Cookie: session } };

    runWrk(target, cpu, Math.min(duration, 2)); // warm-up
    const calm: Sample[] = [];
    const stormy: Sample[] = [];
    const answers: Record<number, number> = {};
    for (let r = 0; r < rounds; r++) {
      calm.push(runWrk(target, cpu));
      const s = startStorm(ports.proxy, duration + 2);
      stormPid = s.child.pid;
      await s.ready;
      stormy.push(runWrk(target, cpu));
      for (const [status, n] of Object.entries(await s.done)) answers[Number(status)] = (answers[Number(status)] ?? 0) + n;
      stormPid = undefined;
    }
    const rps = (xs: Sample[]) => median(xs.map((x) => x.rps));
    const p99 = (xs: Sample[]) => median(xs.map((x) => x.p99ms));
    const mid = (xs: Sample[]) => xs.slice().sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!;
    const ratio = rps(stormy) / rps(calm);
    console.log('');
    console.log(`Sign-in storm: ${STORM} concurrent sign-ins at full PBKDF2 cost (${DEFAULT_PASSWORD_POLICY.pbkdf2Iterations} iterations) vs signed-in traffic (median of ${rounds} rounds, ${duration} s each)`);
    console.log('scenario                          req/s     p99 ms   CPU us/req  = nginx + auth (+ storm client, not counted)');
    for (const [label, xs] of [['signed-in load alone', calm], ['signed-in load + storm', stormy]] as const) {
      const m = mid(xs);
      console.log(`${label.padEnd(30)} ${rps(xs).toFixed(0).padStart(8)} ${p99(xs).toFixed(2).padStart(10)} ${m.cpuUs.toFixed(1).padStart(12)}  = ${m.cpuUsBy.nginx!.toFixed(1)} + ${m.cpuUsBy.auth!.toFixed(1)} (+ ${m.cpuUsBy.storm!.toFixed(1)})`);
    }
    console.log(`storm answers: ${Object.entries(answers).map(([s, n]) => `${n} x ${s === '0' ? 'no answer' : s}`).join(', ')} (302 signed in, 503 hashing cap full, 429 rate limited)`);
    console.log(`signed-in throughput under the storm: ${(ratio * 100).toFixed(1)} % of the no-storm figure (target >= 90 %): ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
    if (answers[500] || answers[502] || answers[0]) throw new Error('the storm got 500/502 or no answer: see the auth service log ' + authLog);
  } catch (err) {
    if (auth) console.error(readFileSync(authLog, 'utf8').split('\n').slice(-20).join('\n'));
    throw err;
  } finally {
    await stopNginx();
    if (auth !== null) await stopChild(auth);
    await pool?.end();
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const at = process.argv.indexOf('--storm');
if (at >= 0) {
  await storm(Number(process.argv[at + 1]), Number(process.argv[at + 2]));
} else {
  await main();
}
