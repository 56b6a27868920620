/**
 * Access-policy changes on the real nginx. `make reload` (scripts/reload.ts, run as a child process
 * exactly as the Makefile runs it) applies a changed POLICY_FILE without dropping a connection and
 * refuses an invalid one with every problem listed while the old policy keeps serving. A plain
 * `nginx -s reload` picks up a new compiled runtime/policy.json; one that is not JSON fails `nginx -t`.
 * A policy.json the gate cannot use fails closed (gate-error, never a 200). The auth service refuses
 * to start with an invalid POLICY_FILE, listing every problem.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test as plainTest } from '@jest/globals';
import { startAuthService } from '../../auth-service/src/main.js';
import { isAppError } from '../../auth-service/src/errors.js';
import { compilePolicyFile } from '../../auth-service/src/policy/policy-runtime.js';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { createFreshDatabase } from '../support/fresh-database.js';
import { accessLogEntry, stackTest, startStack, strongSecret, type AccessLogEntry, type HttpResult, type Stack } from '../support/stack.js';

/** mccoy and kirk may both read /reports. */
const POLICY_TEAM = `
default: allow
rules:
  - id: reports-team
    path: { prefix: /reports }
    priority: 10
    decision: allow
    conditions: { users: [kirk, mccoy] }
  - id: reports-closed
    path: { prefix: /reports }
    priority: 20
    decision: deny
`;

/** The same file after an edit: mccoy was taken off the list. */
const POLICY_KIRK_ONLY = `
default: allow
rules:
  - id: reports-kirk
    path: { prefix: /reports }
    priority: 10
    decision: allow
    conditions: { users: [kirk] }
  - id: reports-closed
    path: { prefix: /reports }
    priority: 20
    decision: deny
`;

/** /reports frozen for everyone (compiled in the test and handed to a plain nginx reload). */
const POLICY_FROZEN = `
default: allow
rules:
  - id: reports-frozen
    path: { prefix: /reports }
    priority: 5
    decision: deny
`;

/**
 * Four mistakes at once: two overlapping rules at one priority, a misspelt key (which also leaves
 * `decision` missing), and a CIDR with host bits set. Each must be reported.
 */
const POLICY_INVALID = `
default: allow
rules:
  - id: reports-team
    path: { prefix: /reports }
    priority: 10
    decision: allow
    conditions: { users: [kirk] }
  - id: reports-archive
    path: { prefix: /reports/archive }
    priority: 10
    decision: deny
  - id: reports-drafts
    path: { prefix: /reports/drafts }
    priority: 30
    decison: deny
  - id: office-only
    path: { prefix: /intranet }
    priority: 40
    decision: allow
    conditions: { sourceIps: [10.0.0.1/8] }
  - id: slow-archive
    path: { regex: '^/reports/([a-z0-9]+-?)+/archive$' }
    priority: 50
    decision: deny
`;

/** The problems POLICY_INVALID must produce, each prefixed with the file name. */
const INVALID_PROBLEMS = [
  "rules 'reports-team' and 'reports-archive' overlap at the same priority 10; give one a lower number",
  'rules[2] (reports-drafts): Unrecognized key: "decison"',
  'rules[2] (reports-drafts).decision: Invalid option: expected one of "allow"|"deny"',
  "rules[3] (office-only).conditions.sourceIps.0: host bits are set (did you mean the network address?) (got '10.0.0.1/8')",
];
/** The catastrophic regex of POLICY_INVALID (the analyser's wording of the cause may vary). */
const SLOW_REGEX_PROBLEM = /rules\[4\] \(slow-archive\)\.path\.regex: slow regular expression refused: /;

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until `done` holds (5 s at most) and returns the last result. */
async function eventually<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() >= deadline) return v;
    await sleep(50);
  }
}

/**
 * Waits until the nginx master has no worker left that is "shutting down": after a reload, new
 * workers can answer while old ones still accept a last connection or two.
 */
async function oldWorkersGone(masterPid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ps = spawnSync('ps', ['-o', 'args=', '--ppid', String(masterPid)], { encoding: 'utf8' });
    if (!/shutting down/.test(ps.stdout)) return;
    if (Date.now() >= deadline) throw new Error(`old nginx workers still running:\n${ps.stdout}`);
    await sleep(50);
  }
}

describe('policy reload on the real nginx', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let dir: string;
  let policyFile: string;
  let mccoy: string;
  let kirk: string;
  const livePolicy = () => join(stack.nginx.prefix, 'conf', 'runtime', 'policy.json');
  const masterPid = () => stack.nginx.process.pid!;

  /** `make reload` as the Makefile runs it, against this stack's prefix (DATA_DIR/nginx-<PROXY_PORT>). */
  const runReload = (env: Record<string, string> = {}): Promise<ChildResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'reload.ts')], {
        cwd: REPO_ROOT,
        env: { ...process.env, DATA_DIR: dirname(stack.nginx.prefix), PROXY_PORT: String(stack.proxyPort), POLICY_FILE: policyFile, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });

  const get = (path: string, cookie?: string, accept = 'application/json') =>
    stack.request('GET', path, cookie === undefined ? { accept } : { accept, cookie });

  /**
   * One request and the access-log line nginx wrote for it. nginx writes a line after the response
   * has gone out, so the log is first left to settle; only while nothing else is in flight.
   */
  const logged = async (path: string, cookie?: string, accept?: string): Promise<{ res: HttpResult; log: AccessLogEntry }> => {
    const lines = () => stack.nginx.accessLog().split('\n').filter((l) => l !== '');
    let before = lines().length;
    for (;;) {
      await sleep(100);
      const now = lines().length;
      if (now === before) break;
      before = now;
    }
    const res = await get(path, cookie, accept);
    const deadline = Date.now() + 3000;
    while (lines().length <= before && Date.now() < deadline) await sleep(25);
    const written = lines().slice(before);
    if (written.length !== 1) throw new Error(`expected one access-log line for ${path}, got:\n${written.join('\n')}`);
    const log = JSON.parse(written[0]) as AccessLogEntry;
    if (log.status !== res.status) throw new Error(`access-log line is not the one for ${path} (${res.status}): ${written[0]}`);
    return { res, log };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-policy-reload-'));
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY_TEAM);
    stack = await startStack({ env: { POLICY_FILE: policyFile } });
    await stack.createUser('kirk', 'policy reload password kirk 1');
    await stack.createUser('mccoy', 'policy reload password mccoy 1');
    const k = await stack.login('kirk', 'policy reload password kirk 1', '/');
    const m = await stack.login('mccoy', 'policy reload password mccoy 1', '/');
    if (k.session === null || m.session === null) throw new Error(`sign-in failed\n${stack.diagnostics()}`);
    kirk = k.session;
    mccoy = m.session;
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a changed POLICY_FILE applies on `make reload`, and the access log names the new rule', async () => {
    const pid = masterPid();
    const before = await logged('/reports/q1', mccoy);
    expect(before.res.status).toBe(200);
    expect(before.log).toMatchObject({ path: '/reports/q1', status: 200, user: 'mccoy', rule: 'reports-team' });

    writeFileSync(policyFile, POLICY_KIRK_ONLY);
    const run = await runReload();
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`Access policy: ${policyFile} (2 rules, default allow)`);
    await eventually(() => get('/reports/switch', mccoy), (r) => r.status === 403);
    await oldWorkersGone(pid);

    stack.upstream.reset();
    const after = await logged('/reports/q2', mccoy);
    expect(after.res.status).toBe(403);
    expect(JSON.parse(after.res.body)).toEqual({ error: 'forbidden', reason: 'policy-denied' });
    expect(stack.upstream.seen).toHaveLength(0);
    expect(after.log).toMatchObject({ status: 403, user: 'mccoy', reason: 'policy-denied', rule: 'reports-closed' });

    // kirk is still let through, by the edited rule.
    const k = await logged('/reports/q4', kirk);
    expect(k.res.status).toBe(200);
    expect(k.log).toMatchObject({ path: '/reports/q4', user: 'kirk', rule: 'reports-kirk', status: 200 });
    // Graceful: the same master, no restart; make reload remembers the file for next time.
    expect(stack.nginx.process.pid).toBe(pid);
    expect(stack.nginx.process.exitCode).toBeNull();
    expect(JSON.parse(readFileSync(join(stack.nginx.prefix, 'policy-source.json'), 'utf8'))).toEqual({ file: policyFile });
  }, 60_000);

  test('a browser the new policy refuses gets the branded 403 page', async () => {
    const page = await get('/reports/q3', mccoy, 'text/html,application/xhtml+xml');
    expect(page.status).toBe(403);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<h1>Access denied</h1>');
    expect(page.body).toContain('<form method="post" action="/logout">');
    expect(stack.nginx.errorLog()).not.toMatch(/errors\/403\.html" failed/);
  });

  // docs/policy.md shows a refusal logged as {"path":"/federation","status":403,...}: the path the
  // user asked for is what an operator searches the log for.
  test('the access log names the refused path, not the internal error page it was answered with', async () => {
    const forbidden = await logged('/reports/q5', mccoy);
    expect(forbidden.log).toMatchObject({ status: 403, rule: 'reports-closed', path: '/reports/q5' });
    const anonymous = await logged('/reports/q6');
    expect(anonymous.log).toMatchObject({ status: 401, reason: 'token-missing', path: '/reports/q6' });
  });

  test('no connection is dropped: a keep-alive connection and a stream of requests span the reload', async () => {
    const pid = masterPid();
    // Policy is POLICY_KIRK_ONLY: mccoy 403, kirk 200. The reload goes back to POLICY_TEAM.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      type AgentResult = { status: number; body: string; reused: boolean; socket: Socket; connection: string | undefined };
      /** A request on the agent; `body.first` is sent at once, `body.rest` once `body.release` resolves. */
      const send = (method: string, path: string, cookie: string, body?: { first: string; rest: string; release: Promise<void> }) =>
        new Promise<AgentResult>((resolve, reject) => {
          const headers: Record<string, string> = { accept: 'application/json', cookie };
          if (body) headers['content-length'] = String(body.first.length + body.rest.length);
          const req: ClientRequest = httpRequest({ host: '127.0.0.1', port: stack.proxyPort, method, path, agent, headers }, (res: IncomingMessage) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: text, reused: req.reusedSocket, socket: req.socket!, connection: res.headers.connection }),
            );
            res.on('error', reject);
          });
          req.on('error', reject);
          if (body) {
            req.write(body.first);
            body.release.then(() => req.end(body.rest), reject);
          } else req.end();
        });

      // Two requests on one kept-alive connection before the reload.
      const ka1 = await send('GET', '/reports/ka-1', kirk);
      const ka2 = await send('GET', '/reports/ka-2', kirk);
      expect([ka1.status, ka2.status]).toEqual([200, 200]);
      expect(ka2.reused).toBe(true);
      expect(ka2.socket).toBe(ka1.socket);
      const socketEvents: string[] = [];
      ka1.socket.on('error', (e) => socketEvents.push(`error ${e.message}`));
      ka1.socket.on('close', (hadError) => socketEvents.push(hadError ? 'close with error' : 'close'));

      // A request in flight on that same connection while nginx reloads: its body arrives only after.
      let finishBody: () => void = () => undefined;
      const release = new Promise<void>((r) => (finishBody = r));
      const inFlight = send('POST', '/reports/in-flight', kirk, { first: 'half of it, ', rest: 'the rest after the reload', release });

      // A stream of requests on fresh connections from two users, all through the reload.
      let streaming = true;
      const failures: string[] = [];
      const seen = { kirk: [] as number[], mccoy: [] as number[] };
      let n = 0;
      const stream = async (who: 'kirk' | 'mccoy') => {
        while (streaming) {
          const path = `/reports/stream-${who}-${n++}`;
          try {
            const r: HttpResult = await get(path, who === 'kirk' ? kirk : mccoy);
            seen[who].push(r.status);
            const ok = who === 'kirk' ? r.status === 200 : r.status === 200 || r.status === 403;
            if (!ok) failures.push(`${path}: ${r.status} ${r.body}`);
          } catch (err) {
            failures.push(`${path}: ${(err as Error).message}`);
          }
        }
      };
      const streams = [stream('kirk'), stream('mccoy'), stream('kirk'), stream('mccoy')];

      writeFileSync(policyFile, POLICY_TEAM);
      const run = await runReload();
      expect(run).toMatchObject({ code: 0, stderr: '' });
      await eventually(() => get('/reports/switched', mccoy), (r) => r.status === 200);
      await sleep(300);
      streaming = false;
      await Promise.all(streams);

      // The old worker still owns the in-flight request and completes it.
      finishBody();
      const posted = await inFlight;
      expect(posted).toMatchObject({ status: 200, reused: true });
      expect(posted.socket).toBe(ka1.socket);
      expect(stack.upstream.seen.some((s) => s.method === 'POST' && s.url === '/reports/in-flight')).toBe(true);
      // Decided by the old policy (its rule name), so the old worker really carried it across.
      expect(await accessLogEntry(stack.nginx, (e) => e.path === '/reports/in-flight')).toMatchObject({ status: 200, user: 'kirk', rule: 'reports-kirk' });
      // The exiting worker says it will close the connection, then closes it cleanly (no reset).
      expect(posted.connection).toBe('close');
      await eventually(async () => socketEvents.length, (len) => len > 0);
      expect(socketEvents).toEqual(['close']);

      // The client simply goes on: the next request on the agent succeeds, under the new policy.
      const ka3 = await send('GET', '/reports/ka-3', mccoy);
      expect(ka3.status).toBe(200);
      expect(await accessLogEntry(stack.nginx, (e) => e.path === '/reports/ka-3')).toMatchObject({ user: 'mccoy', rule: 'reports-team', status: 200 });

      expect(failures).toEqual([]);
      // The stream really spanned the switch: mccoy was refused before it and let through after.
      expect(seen.kirk.length).toBeGreaterThan(10);
      expect(seen.mccoy).toContain(403);
      expect(seen.mccoy).toContain(200);
      expect(seen.mccoy[seen.mccoy.length - 1]).toBe(200);
      expect(stack.nginx.process.pid).toBe(pid);
      await oldWorkersGone(pid);
    } finally {
      agent.destroy();
    }
  }, 60_000);

  test('an invalid policy is refused by `make reload` with every problem listed, and the old one keeps serving', async () => {
    const pid = masterPid();
    const liveBefore = readFileSync(livePolicy(), 'utf8');
    const signals = () => stack.nginx.errorLog().match(/signal process started/g)?.length ?? 0;
    const signalsBefore = signals();
    expect((await get('/reports/before-invalid', mccoy)).status).toBe(200);

    writeFileSync(policyFile, POLICY_INVALID);
    const run = await runReload();
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the access policy was refused, the running one keeps serving');
    for (const problem of INVALID_PROBLEMS) expect(run.stderr).toContain(`  - ${policyFile}: ${problem}\n`);
    expect(run.stderr).toMatch(SLOW_REGEX_PROBLEM);
    expect(run.stderr.match(/^ {2}- /gm)).toHaveLength(INVALID_PROBLEMS.length + 1);

    // Nothing was staged or swapped, and nginx was not signalled: same file, same workers, same answers.
    expect(readFileSync(livePolicy(), 'utf8')).toBe(liveBefore);
    expect(existsSync(join(stack.nginx.prefix, 'conf.next'))).toBe(false);
    expect(signals()).toBe(signalsBefore);
    await sleep(300);
    for (let i = 0; i < 5; i++) {
      expect((await get(`/reports/after-invalid-${i}`, mccoy)).status).toBe(200);
    }
    expect(await accessLogEntry(stack.nginx, (e) => e.path === '/reports/after-invalid-4')).toMatchObject({ user: 'mccoy', rule: 'reports-team' });
    expect(stack.nginx.process.pid).toBe(pid);
    expect(stack.nginx.process.exitCode).toBeNull();
  }, 60_000);

  test('`make reload` refuses an nginx config naming an app the policy lacks (issue 12), and nginx is not signalled', async () => {
    writeFileSync(policyFile, POLICY_TEAM);
    const liveBefore = readFileSync(livePolicy(), 'utf8');
    const signals = () => stack.nginx.errorLog().match(/signal process started/g)?.length ?? 0;
    const signalsBefore = signals();
    const confDir = join(dir, 'nginx-with-app');
    mkdirSync(join(confDir, 'sites'), { recursive: true });
    writeFileSync(join(confDir, 'sites', 'finance.conf'), 'server {\n    set $gate_app finance;\n}\n');
    const run = await runReload({ NGINX_CONF_DIR: confDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('make reload: the nginx config names apps the access policy lacks; the running config keeps serving:');
    expect(run.stderr).toContain(`  - ${confDir}/sites/finance.conf:2: set $gate_app finance: the policy has no app 'finance' (apps: none)`);
    expect(readFileSync(livePolicy(), 'utf8')).toBe(liveBefore);
    expect(signals()).toBe(signalsBefore);
    expect((await get('/reports/after-app-refusal', mccoy)).status).toBe(200);
  }, 60_000);

  test('a plain nginx reload applies a new compiled policy; a policy.json that is not JSON fails nginx -t', async () => {
    const pid = masterPid();
    const frozenFile = join(dir, 'frozen.yaml');
    writeFileSync(frozenFile, POLICY_FROZEN);
    const compiled = compilePolicyFile(frozenFile, Math.floor(Date.now() / 1000));
    if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
    const json = JSON.stringify(compiled.compiled);

    expect(stack.nginx.reload({ extraFiles: { 'runtime/policy.json': json } })).toMatchObject({ ok: true });
    await eventually(() => get('/reports/frozen-0', kirk), (r) => r.status === 403);
    await oldWorkersGone(pid);
    const frozen = await logged('/reports/frozen-1', kirk);
    expect(frozen.res.status).toBe(403);
    expect(frozen.log).toMatchObject({ status: 403, user: 'kirk', reason: 'policy-denied', rule: 'reports-frozen' });
    expect(readFileSync(livePolicy(), 'utf8')).toBe(json);

    const refused = stack.nginx.reload({ extraFiles: { 'runtime/policy.json': '{"version":1,"default":"allow",' } });
    expect(refused.ok).toBe(false);
    expect(refused.output).toMatch(/running one keeps serving/);
    expect(readFileSync(livePolicy(), 'utf8')).toBe(json);
    await sleep(300);
    stack.upstream.reset();
    for (const who of [kirk, mccoy]) expect((await get('/reports/frozen-2', who)).status).toBe(403);
    expect(stack.upstream.seen).toHaveLength(0);
    expect((await get('/elsewhere', kirk)).status).toBe(200);
    expect(stack.nginx.process.pid).toBe(pid);
    // An operator must learn which file nginx -t choked on, not only that it failed.
    expect(refused.output).toMatch(/policy\.json/);
  }, 60_000);

  // Each case starts from a good policy, so the switch to the broken one is seen to happen.
  const brokenPolicies: Array<{ name: string; content: string; problem: string }> = [
    { name: 'a "policy off" marker of an unknown version', content: '{"version":99,"off":true}', problem: 'gate_policy has an unknown version' },
    { name: 'a policy with nothing but a version', content: '{"version":1}', problem: 'gate_policy.default must be allow or deny' },
  ];
  for (const broken of brokenPolicies) {
    test(`fails closed on ${broken.name}: every protected request gets gate-error, never a 200`, async () => {
      const pid = masterPid();
      const frozenFile = join(dir, 'frozen.yaml');
      writeFileSync(frozenFile, POLICY_FROZEN);
      const compiled = compilePolicyFile(frozenFile, Math.floor(Date.now() / 1000));
      if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
      expect(stack.nginx.reload({ extraFiles: { 'runtime/policy.json': JSON.stringify(compiled.compiled) } })).toMatchObject({ ok: true });
      await eventually(() => get('/reports/good', kirk), (r) => r.status === 403);
      await oldWorkersGone(pid);
      expect((await get('/reports/good', kirk)).status).toBe(403);

      // Overwrite the live file, as an operator or a broken deploy might, then a plain nginx reload.
      writeFileSync(livePolicy(), broken.content);
      expect(stack.nginx.reload()).toMatchObject({ ok: true });
      const first = await eventually(() => get('/reports/broken', kirk), (r) => r.status !== 403);
      expect(first.status).toBe(401);
      await oldWorkersGone(pid);

      stack.upstream.reset();
      const probes: Array<{ path: string; cookie?: string; accept?: string }> = [
        { path: '/reports/x', cookie: kirk },
        { path: '/reports/x', cookie: mccoy },
        { path: '/', cookie: kirk },
        { path: '/federation', cookie: mccoy },
        { path: '/anything?q=1', cookie: kirk },
        { path: '/' },
        { path: '/', accept: 'text/html' },
      ];
      for (const p of probes) {
        const res = await get(p.path, p.cookie, p.accept);
        expect({ path: p.path, status: res.status }).toEqual({ path: p.path, status: 401 });
        expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason: 'gate-error' });
      }
      expect(stack.upstream.seen).toHaveLength(0);
      expect((await logged('/federation', kirk)).log).toMatchObject({ status: 401, reason: 'gate-error', user: '', rule: '' });
      expect(stack.nginx.errorLog()).toMatch(new RegExp(`gate-error request_id=[0-9a-f]{32} error=Error: invalid gate_policy: ${broken.problem.replace(/\./g, '\\.')}`));
      expect(stack.nginx.errorLog()).not.toContain(kirk.split('=')[1].split('.')[2]);
    }, 60_000);
  }
});

describe('the auth service and an invalid POLICY_FILE', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-policy-start-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  plainTest('refuses to start, listing every policy problem with the other config errors, and writes nothing', async () => {
    const db = await createFreshDatabase();
    try {
      const policyFile = join(dir, 'policy.yaml');
      writeFileSync(policyFile, POLICY_INVALID);
      const runtimeDir = join(dir, 'runtime');
      const env = {
        DATABASE_URL: db.url,
        JWT_SECRET: strongSecret(),
        AUTH_HOST: '127.0.0.1',
        AUTH_PORT: '0',
        GATE_CONFIG_FILE: join(runtimeDir, 'gate-config.json'),
        POLICY_FILE: policyFile,
        LOG_LEVEL: 'loud',
      };
      let error: unknown;
      try {
        const started = await startAuthService(env);
        await started.close();
      } catch (err) {
        error = err;
      }
      expect(isAppError(error) && error.code).toBe('ERR_CONFIG');
      const message = (error as Error).message;
      for (const problem of INVALID_PROBLEMS) expect(message).toContain(`POLICY_FILE: ${policyFile}: ${problem}`);
      expect(message).toMatch(/LOG_LEVEL: /);
      const cause = (error as Error & { cause: string[] }).cause;
      expect(message).toMatch(SLOW_REGEX_PROBLEM);
      expect(cause.filter((e) => e.startsWith('POLICY_FILE: '))).toHaveLength(INVALID_PROBLEMS.length + 1);
      // Nothing half-written for nginx to pick up.
      expect(existsSync(runtimeDir) ? readdirSync(runtimeDir) : []).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  plainTest('refuses to start with a POLICY_FILE that does not exist', async () => {
    const missing = join(dir, 'no-such-policy.yaml');
    let error: unknown;
    try {
      const started = await startAuthService({
        DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
        JWT_SECRET: strongSecret(),
        AUTH_HOST: '127.0.0.1',
        AUTH_PORT: '0',
        GATE_CONFIG_FILE: join(dir, 'runtime-missing', 'gate-config.json'),
        POLICY_FILE: missing,
      });
      await started.close();
    } catch (err) {
      error = err;
    }
    expect(isAppError(error) && error.code).toBe('ERR_CONFIG');
    expect((error as Error).message).toContain(`POLICY_FILE: ${missing}: cannot read the policy file (no such file)`);
  });
});
