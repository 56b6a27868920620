/**
 * `make bench`, third part: silent renewal (issue 9) under a steady stream of expired tokens.
 *
 * The real parts, on loopback: the auth service (auth-service/src/main.ts) in a child process, so its
 * CPU can be counted; a fresh PostgreSQL database (tests/support/fresh-database.ts, dropped at the
 * end); the repo's gateway site (nginx/sites/gateway.conf.template) rendered by prepareNginxPrefix
 * with the auth upstream pointing at the service and the app upstream at an nginx server answering
 * from memory (in the same nginx). One local user has BENCH_RENEW_SESSIONS sessions (default 200),
 * opened as a sign-in opens them (session row + login_success event). Two scenarios, interleaved as
 * in bench/run.ts, each a wrk Lua script that walks a list of cookies, one per request; consecutive
 * entries name different sessions, and the two wrk threads start half the list apart, so requests
 * in flight name distinct sessions (each renewal locks its session's row):
 *   (f) every token fresh (same sid and iat as a renewal gives): the gate alone, no auth-service call;
 *   (r) every token expired by two minutes but otherwise valid: every request is a renewal
 *       (@gate_renew -> POST /auth/renew -> row lock, user re-read, `renewal` audit row -> new token).
 * (r) has BENCH_RENEW_TOKENS distinct expired tokens (default 20,000: the sessions' tokens with other
 * past `exp` values), and each run starts where the previous one stopped, so no request repeats a
 * token sent in the seconds before: a renewal answered from a cache would not be measured. wrk
 * ignores Set-Cookie, so every (r) request renews. Each run checks that: the `renewal` rows it added
 * cover wrk's responses, and no `renewal_refused`.
 * Prints req/s (for (r): renewals/s), p99 under load, p50 and p99 with one connection, and the CPU per request
 * of nginx's workers, the auth service process and the PostgreSQL backends of the service's pool
 * (excluding wrk and PostgreSQL's background writers), with ratios to (f).
 * Env: BENCH_DURATION, BENCH_ROUNDS, BENCH_CONNECTIONS (bench/load.ts), BENCH_RENEW_SESSIONS,
 * BENCH_RENEW_TOKENS, TEST_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres). Needs wrk and psql (to find
 * the pool's backends in pg_stat_activity).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SESSION_MAX_SECONDS, DEFAULT_SESSION_TOKEN_TTL_SECONDS } from '../auth-service/src/config.js';
import { createLogger } from '../auth-service/src/logger.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../auth-service/src/passwords/index.js';
import { type GroupSelection } from '../auth-service/src/services/group-selection.js';
import { createServerSessions } from '../auth-service/src/services/server-sessions.js';
import { issueSessionToken, signSessionClaims } from '../auth-service/src/services/session-token.js';
import { createAuditRepo } from '../auth-service/src/storage/audit-repo.js';
import { createPool, runMigrations } from '../auth-service/src/storage/db.js';
import { createSessionsRepo } from '../auth-service/src/storage/sessions-repo.js';
import { createUsersRepo } from '../auth-service/src/storage/users-repo.js';
import { startNginx, waitForPort } from '../scripts/lib/nginx-runtime.js';
import { prepareBenchGateway, spawnBenchAuthService, stopChild } from './bench-gateway.js';
import { createFreshDatabase, DEFAULT_TEST_PG_ADMIN_URL, type FreshDatabase } from '../tests/support/fresh-database.js';
import { rawRequest, setCookies } from '../tests/support/http.js';
import { MEASURED_PATH } from './access-policies.js';
import { childPids, connections, duration, median, requireWrk, rounds, runWrk, type PidSource, type Sample, type WrkTarget } from './load.js';

const SESSIONS = Number(process.env.BENCH_RENEW_SESSIONS ?? 200);
/** Distinct expired tokens per session: each a past `exp` one second earlier than the last. */
const TOKENS_PER_SESSION = Math.max(1, Math.ceil(Number(process.env.BENCH_RENEW_TOKENS ?? 20_000) / SESSIONS));
const TOKEN_TTL = DEFAULT_SESSION_TOKEN_TTL_SECONDS;
/** Expired tokens are this far past their exp: well beyond SESSION_LEEWAY_SECONDS (30) for the whole run. */
const EXPIRED_BY_SECONDS = 120;
/** The bench's own connections; the other backends of the database are the auth service's pool. */
const BENCH_APPLICATION = 'gw-bench';
/** An API client: a refused renewal is a 401 (wrk counts it), where a browser would get a 302. */
const ACCEPT = 'application/json';
/** Every group the user has goes into the token (the service without POLICY_FILE selects again at renewal). */
const ALL_GROUPS: GroupSelection = { policyGroups: new Set(), payload: { all: true, exact: [], prefixes: [] } };

interface Scenario {
  key: 'f' | 'r';
  label: string;
  target: WrkTarget;
}

/**
 * A wrk script that sends GET `path` with the cookies of `cookieFile` in turn, from the index given
 * as its argument; the second thread starts half the list further.
 */
function cookieScript(cookieFile: string, path: string): string {
  return `-- Generated by bench/renewal.ts
local cookies = {}
for line in io.lines(${JSON.stringify(cookieFile)}) do cookies[#cookies + 1] = line end
local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end
local i = 0
function init(args)
  i = (tonumber(args[1]) or 0) + math.floor((thread_index or 0) * #cookies / 2)
end
function request()
  local cookie = cookies[i % #cookies + 1]
  i = i + 1
  return wrk.format("GET", ${JSON.stringify(path)}, { ["Cookie"] = cookie, ["Accept"] = ${JSON.stringify(ACCEPT)} })
end
`;
}

/** The PostgreSQL backends serving `database` for anyone but the bench itself (the auth service's pool). */
function serviceBackends(database: string): number[] {
  const adminUrl = process.env.TEST_PG_ADMIN_URL || DEFAULT_TEST_PG_ADMIN_URL;
  const r = spawnSync(
    'psql',
    ['-AtX', '-v', 'ON_ERROR_STOP=1', '-d', adminUrl, '-c', `SELECT pid FROM pg_stat_activity WHERE datname = '${database}' AND application_name <> '${BENCH_APPLICATION}'`],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.error}`);
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

async function main(): Promise<void> {
  requireWrk();
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-renew-'));
  let db: FreshDatabase | null = null;
  let pool: ReturnType<typeof createPool> | null = null;
  let auth: ChildProcess | null = null;
  let stopNginx = async () => {};
  const authLog = join(tmp, 'auth-service.log');
  try {
    db = await createFreshDatabase();
    const database = new URL(db.url).pathname.slice(1);
    pool = createPool(db.url, { applicationName: BENCH_APPLICATION });
    await runMigrations(pool);

    // One local user, signed in SESSIONS times, as the login route opens a session.
    const user = await createUsersRepo(pool).create({
      username: 'kirk',
      passwordHash: await createPasswordHasher(DEFAULT_PASSWORD_POLICY).hash(randomBytes(24).toString('base64url')),
      groups: ['Federation'],
      email: 'kirk@enterprise.example',
      fullName: 'James T. Kirk',
    });
    const secret = randomBytes(48).toString('base64url');
    const serverSessions = createServerSessions({
      sessions: createSessionsRepo(pool),
      audit: createAuditRepo(pool),
      lifetimes: { maxSeconds: DEFAULT_SESSION_MAX_SECONDS, idleSeconds: 3600 },
      logger: createLogger({ level: 'silent' }),
      now: Date.now,
      storeReady: () => true,
    });
    const signedInAt = Date.now() - (TOKEN_TTL + EXPIRED_BY_SECONDS) * 1000;
    const nowSeconds = Math.floor(Date.now() / 1000);
    /** How long the measuring takes: the warm-up, then per round both scenarios under load and with one connection. */
    const runSeconds = 2 * Math.min(duration, 2) + rounds * 2 * (duration + Math.min(duration, 2));
    const expired: string[][] = Array.from({ length: TOKENS_PER_SESSION }, () => []);
    const fresh: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const issued = issueSessionToken({
        identity: { sub: user.id, username: user.username, name: 'James T. Kirk', email: 'kirk@enterprise.example', groups: [...user.groups], src: 'local' },
        ip: '127.0.0.1',
        secret,
        ttlSeconds: TOKEN_TTL,
        now: signedInAt,
        groupSelection: ALL_GROUPS,
      });
      await serverSessions.open(issued.claims, { clientIp: '127.0.0.1', userAgent: 'gw-bench', requestId: `bench-signin-${i}`, groups: user.groups });
      for (let j = 0; j < TOKENS_PER_SESSION; j++) expired[j]!.push(`gw_session=${signSessionClaims({ ...issued.claims, exp: issued.claims.exp - j }, secret)}`);
      // What a renewal hands out: same sid and iat, a new exp (later than TOKEN_TTL if the run is longer).
      fresh.push(`gw_session=${signSessionClaims({ ...issued.claims, exp: nowSeconds + Math.max(TOKEN_TTL, runSeconds + 60) }, secret)}`);
    }

    const gateway = await prepareBenchGateway(join(tmp, 'nginx'));
    const { ports, prefix } = gateway;
    auth = spawnBenchAuthService(gateway, authLog, {
      DATABASE_URL: db.url,
      JWT_SECRET: secret,
      SESSION_TOKEN_TTL_SECONDS: String(TOKEN_TTL),
      SESSION_MAX_SECONDS: String(DEFAULT_SESSION_MAX_SECONDS),
      SESSION_IDLE_SECONDS: '3600',
      LOG_LEVEL: 'info',
    });
    const authExited = new Promise<never>((_resolve, reject) => auth!.once('exit', (code) => reject(new Error(`the auth service exited (${code})`))));
    authExited.catch(() => undefined);
    await Promise.race([waitForPort(ports.auth, 30_000), authExited]);
    const nginx = await startNginx(prefix, ports.proxy);
    stopNginx = () => nginx.stop();
    if (nginx.process.pid === undefined || auth.pid === undefined) throw new Error('nginx or the auth service has no pid');
    const nginxPid = nginx.process.pid;
    const authPid = auth.pid;
    const cpu: Record<string, PidSource> = { nginx: () => childPids(nginxPid), auth: () => [authPid], postgres: () => serviceBackends(database) };

    const count = async (event: string): Promise<number> =>
      Number((await pool!.query<{ n: string }>('SELECT count(*) AS n FROM auth_events WHERE event = $1', [event])).rows[0]!.n);

    // Before measuring: an expired token is renewed in place (the page, a new cookie, a `renewal`
    // row); a fresh one passes without an auth-service call.
    const renewalsBefore = await count('renewal');
    const renewed = await rawRequest(ports.proxy, 'GET', MEASURED_PATH, { cookie: expired[0]![0]!, accept: ACCEPT });
    if (renewed.status !== 200 || renewed.body !== 'hello from upstream\n' || !setCookies(renewed).some((c) => /^gw_session=[\w-]+\./.test(c))) {
      throw new Error(`an expired token was not renewed: ${renewed.status} ${renewed.body.trim()}`);
    }
    const passed = await rawRequest(ports.proxy, 'GET', MEASURED_PATH, { cookie: fresh[0]!, accept: ACCEPT });
    if (passed.status !== 200 || passed.body !== 'hello from upstream\n' || setCookies(passed).length > 0) {
      throw new Error(`a fresh token did not pass alone: ${passed.status} ${passed.body.trim()}`);
    }
    if ((await count('renewal')) !== renewalsBefore + 1) throw new Error('the renewal wrote no `renewal` audit row');

    // Session by session, then the next variant: consecutive requests name different sessions.
    for (const [name, cookies] of [['expired', expired.flat()], ['fresh', fresh]] as const) writeFileSync(join(tmp, `${name}.txt`), cookies.join('\n') + '\n');
    const target = (name: string): WrkTarget => {
      const script = join(tmp, `${name}.lua`);
      writeFileSync(script, cookieScript(join(tmp, `${name}.txt`), MEASURED_PATH));
      return { port: ports.proxy, path: MEASURED_PATH, script };
    };
    const scenarios: Scenario[] = [
      { key: 'f', label: '(f) gateway, fresh token', target: target('fresh') },
      { key: 'r', label: '(r) gateway, expired token: renewed', target: target('expired') },
    ];

    /**
     * The renewal count once the service is idle: wrk stops with requests in flight, whose renewals
     * still land after it exits; they must count for the run that sent them, not the next one.
     */
    const settledRenewals = async (): Promise<number> => {
      let last = await count('renewal');
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const now = await count('renewal');
        if (now === last) return now;
        last = now;
      }
      throw new Error('renewals still being written 5 s after wrk stopped');
    };
    /** Where each scenario's next run starts in its list; (r)'s first token was renewed just above. */
    const cursor: Record<string, number> = { f: 0, r: 1 };
    /** One wrk run; for (r), checks that every response was a renewal. */
    const measure = async (s: Scenario, seconds = duration, conns = connections): Promise<Sample> => {
      const [renewals, refused] = [await count('renewal'), await count('renewal_refused')];
      const sample = runWrk({ ...s.target, connections: conns, scriptArgs: [String(cursor[s.key])] }, cpu, seconds);
      // Past every token this run sent, including those in flight when wrk stopped.
      cursor[s.key]! += sample.requests + conns;
      const added = (await settledRenewals()) - renewals;
      if ((await count('renewal_refused')) !== refused) throw new Error(`${s.label}: some renewals were refused`);
      // wrk counts the answers it read; a request in flight when it stopped may have renewed too.
      const expected = s.key === 'r' ? sample.requests : 0;
      if (added < expected || added > expected + (s.key === 'r' ? conns : 0)) {
        throw new Error(`${s.label}: ${sample.requests} responses but ${added} renewals in the audit trail`);
      }
      return sample;
    };

    const samples: Record<string, Sample[]> = { f: [], r: [] };
    const single: Record<string, Sample[]> = { f: [], r: [] };
    for (const s of scenarios) await measure(s, Math.min(duration, 2));
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? scenarios : [...scenarios].reverse();
      for (const s of order) {
        const sample = await measure(s);
        samples[s.key]!.push(sample);
        console.error(`round ${round}/${rounds} ${s.label}: ${sample.rps.toFixed(0)} req/s, p99 ${sample.p99ms.toFixed(2)} ms, ${sample.cpuUs.toFixed(1)} us CPU/req`);
      }
      // The same with one connection: the latency a renewal adds when nothing queues.
      for (const s of order) {
        const sample = await measure(s, Math.min(duration, 2), 1);
        single[s.key]!.push(sample);
        console.error(`round ${round}/${rounds} ${s.label}, 1 connection: ${sample.rps.toFixed(0)} req/s, p50 ${sample.p50ms.toFixed(2)} ms, p99 ${sample.p99ms.toFixed(2)} ms`);
      }
    }

    const med = (set: Record<string, Sample[]>, k: string, f: (x: Sample) => number) => median(set[k]!.map(f));
    const rps = (k: string) => med(samples, k, (x) => x.rps);
    const p99 = (k: string) => med(samples, k, (x) => x.p99ms);
    const p50One = (k: string) => med(single, k, (x) => x.p50ms);
    const p99One = (k: string) => med(single, k, (x) => x.p99ms);
    /** The round with the median CPU per request, so that its split adds up. */
    const cpuRound = (k: string) => [...samples[k]!].sort((a, b) => a.cpuUs - b.cpuUs)[Math.floor(samples[k]!.length / 2)]!;
    const cpuOf = (k: string, group?: string) => (group === undefined ? cpuRound(k).cpuUs : cpuRound(k).cpuUsBy[group]!);
    console.log(
      `\nRenewal benchmark (issue 9): ${rounds} interleaved rounds x ${duration}s, wrk -t2 -c${connections}, loopback, median per scenario, GET ${MEASURED_PATH}, ` +
        `${SESSIONS} sessions of one local user (${SESSIONS * TOKENS_PER_SESSION} distinct expired tokens), the repo's gateway site, auth service in a child process, PostgreSQL (fresh database)`,
    );
    console.log('scenario                                   req/s     p99 ms  1 conn: p50 / p99 ms  ratio to (f)   CPU us/req  = nginx + auth + postgres');
    for (const s of scenarios) {
      const k = s.key;
      console.log(
        `${s.label.padEnd(38)} ${rps(k).toFixed(0).padStart(8)} ${p99(k).toFixed(2).padStart(10)} ${p50One(k).toFixed(2).padStart(12)} / ${p99One(k).toFixed(2).padEnd(6)} ${(rps(k) / rps('f')).toFixed(2).padStart(13)} ${cpuOf(k).toFixed(1).padStart(12)}` +
          `  = ${cpuOf(k, 'nginx').toFixed(1)} + ${cpuOf(k, 'auth').toFixed(1)} + ${cpuOf(k, 'postgres').toFixed(1)}`,
      );
    }
    console.log('(CPU us/req: the round with the median; nginx workers + the auth service process + its PostgreSQL backends, excluding wrk and PostgreSQL background processes.)');
    const perRound = samples.r!.map((x) => x.rps.toFixed(0)).join(', ');
    const delta = (a: number, b: number, digits: number) => `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(digits)}`;
    console.log('');
    console.log(`renewals per second (every (r) request renews): ${rps('r').toFixed(0)}  (per round: ${perRound}; checked against the audit trail's renewal rows)`);
    console.log(`p99 with a renewal, under load:   ${p99('r').toFixed(2)} ms vs ${p99('f').toFixed(2)} ms fresh (${delta(p99('r'), p99('f'), 2)} ms, x${(p99('r') / p99('f')).toFixed(1)})`);
    console.log(`p99 with a renewal, 1 connection: ${p99One('r').toFixed(2)} ms vs ${p99One('f').toFixed(2)} ms fresh (${delta(p99One('r'), p99One('f'), 2)} ms, x${(p99One('r') / p99One('f')).toFixed(1)})`);
    console.log(`p50 with a renewal, 1 connection: ${p50One('r').toFixed(2)} ms vs ${p50One('f').toFixed(2)} ms fresh (${delta(p50One('r'), p50One('f'), 2)} ms: the time a renewal adds when nothing queues)`);
    console.log(
      `CPU per renewal: ${cpuOf('r').toFixed(1)} us vs ${cpuOf('f').toFixed(1)} us fresh (${delta(cpuOf('r'), cpuOf('f'), 1)} us; ` +
        `nginx ${delta(cpuOf('r', 'nginx'), cpuOf('f', 'nginx'), 1)}, auth service ${delta(cpuOf('r', 'auth'), cpuOf('f', 'auth'), 1)}, postgres ${delta(cpuOf('r', 'postgres'), cpuOf('f', 'postgres'), 1)})`,
    );
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(authLog, 'utf8').trim().split('\n').slice(-20).join('\n');
    } catch {
      // No log yet.
    }
    if (log !== '') (err as Error).message += `\n--- auth service log (last lines) ---\n${log}`;
    throw err;
  } finally {
    await stopNginx();
    if (auth !== null) await stopChild(auth);
    await pool?.end();
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench/renewal failed: ${err.message}`);
  process.exit(1);
});
