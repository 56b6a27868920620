/**
 * `make bench`: one interleaved run on loopback, same upstream and same request for every scenario.
 *   (a) plain nginx proxy_pass
 *   (b) the njs gate with a valid session (the repo's own snippets), no access policy
 *   (c) nginx auth_request to a node:http + jsonwebtoken verifier (the auth_request pattern)
 *   (d) the gate with a 10-rule access policy, (e) with a 1,000-rule one (bench/access-policies.ts)
 * Prints requests/s, p99, the ratio to (a) and the server CPU per request (nginx workers + verifier),
 * then the targets: (b) >= 0.65 x (a), (b) >= 2.5 x (c), (d) >= 0.90 x (b) and (e) >= 0.909 x (d)
 * (1,000 rules cost at most 10 % more than 10), then the njs CLI micro-benchmark with both policies.
 * Env: BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 *
 * One nginx serves every scenario: njs 0.7.9 accepts `js_preload_object` in a server block, where it
 * overrides the http-level object of the same name for that server only (the http-level gate_config
 * is still inherited). The three gate servers (b), (d), (e) each preload their own gate_policy that
 * way, so they are wired alike; the checks before measuring prove each server really got its policy.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGateConfig, writeGateConfig } from '../auth-service/src/services/gate-config.js';
import { POLICY_OFF } from '../auth-service/src/policy/policy-runtime.js';
import { issueSessionToken } from '../auth-service/src/services/session-token.js';
import { type GroupSelection } from '../auth-service/src/services/group-selection.js';
import { freePort, prepareNginxPrefix, REPO_ROOT, startNginx, waitForPort } from '../scripts/lib/nginx-runtime.js';
import { rawRequest } from '../tests/support/http.js';
import { randomBytes } from 'node:crypto';
import type { GatePolicy } from '../njs/src/core/policy-contract.js';
import { ADMIN_PATH, LARGE_ONLY_DENIED_PATH, MEASURED_PATH, compileBenchPolicy } from './access-policies.js';
import { childPids, connections, duration, measureInterleaved, median, requireWrk, rounds, runWrk, type Sample } from './load.js';

/** The bench's tokens carry every group they name, as the bench policies compare them. */
const BENCH_GROUP_SELECTION: GroupSelection = { policyGroups: new Set(), payload: { all: true, exact: [], prefixes: [] } };

interface Scenario {
  key: string;
  label: string;
  port: number;
}

interface Ports {
  upstream: number;
  plain: number;
  gate: number;
  authreq: number;
  verifier: number;
  policy10: number;
  policy1000: number;
}

/** Server-level policy files (conf/runtime/), each preloaded by one gate server. */
const POLICY_FILES = { off: 'runtime/bench-policy-off.json', p10: 'runtime/bench-policy-10.json', p1000: 'runtime/bench-policy-1000.json' };

/** A gate server as operators wire it, except that it preloads its own gate_policy at server level. */
function gateServer(comment: string, port: number, policyFile: string): string {
  return `
# ${comment}
server {
    listen 127.0.0.1:${port};
    access_log off;
    js_preload_object gate_policy from ${policyFile};
    include snippets/gate-server.conf;
    location / {
        include snippets/protect.conf;
        proxy_pass http://bench_upstream;
    }
}
`;
}

function benchSite(p: Ports): string {
  return `
upstream bench_upstream { server 127.0.0.1:${p.upstream}; keepalive 64; }
upstream auth_service { server 127.0.0.1:9; }
upstream bench_verifier { server 127.0.0.1:${p.verifier}; keepalive 64; }

# The upstream every scenario proxies to: nginx answering from memory, so it is never the bottleneck.
server {
    listen 127.0.0.1:${p.upstream};
    access_log off;
    location / { return 200 "hello from upstream\\n"; }
}

# (a) plain proxy
server {
    listen 127.0.0.1:${p.plain};
    access_log off;
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://bench_upstream;
    }
}

${gateServer('(b) the gate with no policy', p.gate, POLICY_FILES.off)}${gateServer('(d) the gate with the 10-rule policy', p.policy10, POLICY_FILES.p10)}${gateServer('(e) the gate with the 1,000-rule policy', p.policy1000, POLICY_FILES.p1000)}
# (c) auth_request to a node:http + jsonwebtoken verifier
server {
    listen 127.0.0.1:${p.authreq};
    access_log off;
    location = /_verify {
        internal;
        proxy_pass http://bench_verifier;
        proxy_pass_request_body off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Content-Length "";
        proxy_set_header X-Real-IP $remote_addr;
    }
    location / {
        auth_request /_verify;
        auth_request_set $auth_user $upstream_http_x_auth_user;
        auth_request_set $auth_groups $upstream_http_x_auth_groups;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Payload-username $auth_user;
        proxy_set_header X-Payload-groups $auth_groups;
        proxy_pass http://bench_upstream;
    }
}
`;
}

/** Asserts the status (and, for 403s, the policy-denied JSON) of one request before anything is measured. */
async function expectStatus(s: Scenario, path: string, cookie: string, status: number, why: string): Promise<void> {
  const r = await rawRequest(s.port, 'GET', path, { cookie, accept: 'application/json' });
  const denied = status !== 403 || /"reason":"policy-denied"/.test(r.body);
  if (r.status !== status || !denied) throw new Error(`${s.label}: GET ${path} ${why}: expected ${status}, got ${r.status} ${r.body.trim()}`);
}

async function main(): Promise<void> {
  requireWrk();
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const children: Array<ReturnType<typeof spawn>> = [];
  let stopNginx = async () => {};
  try {
    const ports: Ports = {
      upstream: await freePort(),
      plain: await freePort(),
      gate: await freePort(),
      authreq: await freePort(),
      verifier: await freePort(),
      policy10: await freePort(),
      policy1000: await freePort(),
    };
    const secret = randomBytes(48).toString('base64url');

    const verifier = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'auth-request-verifier.ts'), String(ports.verifier)], {
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    children.push(verifier);
    verifier.stdin.end(secret);
    await waitForPort(ports.verifier, 15_000);

    const { prefix, gateConfigFile } = prepareNginxPrefix({
      prefix: join(tmp, 'nginx'),
      vars: { PROXY_LISTEN: `127.0.0.1:${await freePort()}`, APP_UPSTREAM: '127.0.0.1:9', AUTH_UPSTREAM: '127.0.0.1:9' },
      extraFiles: { 'sites/bench.conf': benchSite(ports) },
    });
    rmSync(join(prefix, 'conf', 'sites', 'gateway.conf'));
    await writeGateConfig(
      gateConfigFile,
      buildGateConfig({ jwt: { secret, previousSecrets: [], previousKeys: [] }, session: { cookieName: 'gw_session', ipBinding: 'exact', leewaySeconds: 30, ttlSeconds: 3600, cookieSecure: false }, sessionLifetimes: { maxSeconds: 3600, idleSeconds: 3600 } } as Parameters<typeof buildGateConfig>[0]),
    );
    // The policies are compiled from source by the auth service's compiler, as `make up` does.
    const nowSeconds = Math.floor(Date.now() / 1000);
    const policies: Record<keyof typeof POLICY_FILES, GatePolicy> = { off: POLICY_OFF, p10: compileBenchPolicy(10, nowSeconds), p1000: compileBenchPolicy(1000, nowSeconds) };
    writeFileSync(join(prefix, 'conf', 'runtime', 'policy.json'), JSON.stringify(POLICY_OFF));
    for (const k of Object.keys(POLICY_FILES) as Array<keyof typeof POLICY_FILES>) {
      writeFileSync(join(prefix, 'conf', POLICY_FILES[k]), JSON.stringify(policies[k]));
    }
    const nginx = await startNginx(prefix, ports.gate);
    stopNginx = () => nginx.stop();
    if (nginx.process.pid === undefined || verifier.pid === undefined) throw new Error('nginx or the verifier has no pid');
    const nginxPid = nginx.process.pid;
    const verifierPid = verifier.pid;
    // The server side: nginx's workers and the verifier (the upstream is served by the same nginx).
    const server = { server: () => [verifierPid, ...childPids(nginxPid)] };

    const { token } = issueSessionToken({
      identity: { sub: '00000000-0000-4000-8000-000000000001', username: 'kirk', name: 'James T. Kirk', email: 'kirk@enterprise.example', groups: ['Federation'], src: 'local' },
      ip: '127.0.0.1',
      secret,
      ttlSeconds: 3600,
      now: Date.now(),
      groupSelection: BENCH_GROUP_SELECTION,
    });
    const cookie = `gw_session=${token}`;
    // mccoy is signed in but not in Federation: the policies refuse him the measured path.
    const mccoyCookie = `gw_session=${issueSessionToken({
      identity: { sub: '00000000-0000-4000-8000-000000000002', username: 'mccoy', name: 'Leonard McCoy', email: 'mccoy@enterprise.example', groups: [], src: 'local' },
      ip: '127.0.0.1',
      secret,
      ttlSeconds: 3600,
      now: Date.now(),
      groupSelection: BENCH_GROUP_SELECTION,
    }).token}`;

    // Run order within a round: each policy scenario right after the one it is compared with.
    const scenarios: Scenario[] = [
      { key: 'a', label: '(a) plain nginx proxy', port: ports.plain },
      { key: 'b', label: '(b) njs gate, valid session, no policy', port: ports.gate },
      { key: 'd', label: '(d) njs gate + 10-rule policy', port: ports.policy10 },
      { key: 'e', label: '(e) njs gate + 1,000-rule policy', port: ports.policy1000 },
      { key: 'c', label: '(c) auth_request -> node:http + jsonwebtoken', port: ports.authreq },
    ];
    const byKey = (k: string) => scenarios.find((s) => s.key === k) as Scenario;
    const measure = (s: Scenario, seconds = duration): Sample =>
      runWrk({ port: s.port, path: MEASURED_PATH, headers: { Cookie: cookie, Accept: 'text/html' } }, server, seconds);
    // Every scenario must really pass the session through before it is measured...
    for (const s of scenarios) await expectStatus(s, MEASURED_PATH, cookie, 200, 'as kirk (group Federation)');
    // ...and each gate server must run the policy it claims: none, the 10 rules, the 1,000 rules.
    await expectStatus(byKey('b'), MEASURED_PATH, mccoyCookie, 200, 'as mccoy without a policy');
    await expectStatus(byKey('b'), ADMIN_PATH, cookie, 200, 'without a policy');
    for (const k of ['d', 'e']) {
      await expectStatus(byKey(k), MEASURED_PATH, mccoyCookie, 403, 'as mccoy (not in Federation)');
      await expectStatus(byKey(k), ADMIN_PATH, cookie, 403, 'as kirk (rule admin-others)');
    }
    await expectStatus(byKey('d'), LARGE_ONLY_DENIED_PATH, cookie, 200, 'as kirk (no such rule among 10)');
    await expectStatus(byKey('e'), LARGE_ONLY_DENIED_PATH, cookie, 403, 'as kirk (rule app-0007 of 1,000)');

    const samples = measureInterleaved(scenarios, measure);

    const rps = (k: string) => median(samples[k].map((x) => x.rps));
    const p99 = (k: string) => median(samples[k].map((x) => x.p99ms));
    const cpu = (k: string) => median(samples[k].map((x) => x.cpuUs));
    console.log(`\nBenchmark: ${rounds} interleaved rounds x ${duration}s, wrk -t2 -c${connections}, loopback, median per scenario, GET ${MEASURED_PATH}`);
    console.log('scenario                                          req/s     p99 ms   ratio to (a)   CPU us/req');
    for (const s of scenarios) {
      console.log(
        `${s.label.padEnd(48)} ${rps(s.key).toFixed(0).padStart(8)} ${p99(s.key).toFixed(2).padStart(10)} ${(rps(s.key) / rps('a')).toFixed(2).padStart(12)} ${cpu(s.key).toFixed(1).padStart(12)}`,
      );
    }
    console.log('(CPU us/req: nginx workers + verifier, excluding wrk; the upstream is served by the same nginx.)');
    const perRound = (x: string, y: string) => samples[x].map((s, i) => (s.rps / samples[y][i].rps).toFixed(2)).join(', ');
    // Each target twice: by req/s (the ratio asked for; wrk shares the 2 cores, so it dilutes the
    // gap) and by server CPU per request, the steadier figure when other work shares the machine.
    const target = (name: string, x: string, y: string, min: number, note: string) => {
      const ratio = rps(x) / rps(y);
      const cpuRatio = cpu(y) / cpu(x);
      const delta = cpu(x) - cpu(y);
      console.log(`target ${name}: ${note}`);
      console.log(`  by req/s:    ${ratio.toFixed(2)} ${ratio >= min ? 'MET' : 'MISSED'}  (per round: ${perRound(x, y)})`);
      console.log(`  by CPU/req:  ${cpuRatio.toFixed(2)} ${cpuRatio >= min ? 'MET' : 'MISSED'}  (${cpu(x).toFixed(1)} vs ${cpu(y).toFixed(1)} us/req, ${delta >= 0 ? '+' : ''}${delta.toFixed(1)} us)`);
    };
    console.log('');
    target('(b) >= 0.65 x (a)', 'b', 'a', 0.65, 'the gate keeps 65 % of plain proxy throughput');
    target('(b) >= 2.5 x (c)', 'b', 'c', 2.5, 'the gate beats auth_request 2.5 times');
    target('(d) >= 0.90 x (b)', 'd', 'b', 0.9, 'a 10-rule policy stays within 10 % of no policy');
    target('(e) >= 0.909 x (d)', 'e', 'd', 1 / 1.1, '1,000 rules cost at most 10 % more than 10');

    // The same two policies in the njs CLI: the policy code alone, without nginx around it.
    const njsOut = spawnSync('njs', [join(REPO_ROOT, 'njs', 'dist', 'gate-bench.js'), join(prefix, 'conf', POLICY_FILES.p10), join(prefix, 'conf', POLICY_FILES.p1000)], {
      encoding: 'utf8',
    });
    if (njsOut.status !== 0) throw new Error(`njs micro-benchmark failed:\n${njsOut.stdout}${njsOut.stderr}`);
    console.log(`\nnjs CLI micro-benchmark (one VM: no per-request VM clone, regexes compiled once):\n${njsOut.stdout.trimEnd()}`);
  } finally {
    await stopNginx();
    for (const c of children) c.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
