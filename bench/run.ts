/**
 * `make bench`: one interleaved run on loopback, same upstream for every scenario.
 *   (a) plain nginx proxy_pass
 *   (b) the njs gate with a valid session (the repo's own snippets)
 *   (c) nginx auth_request to a node:http + jsonwebtoken verifier (the auth_request pattern)
 * Prints requests/s, p99 and the ratio to (a), then the targets: (b) >= 0.65 x (a), (b) >= 2.5 x (c).
 * Env: BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGateConfig, writeGateConfig } from '../auth-service/src/services/gate-config.js';
import { POLICY_OFF } from '../auth-service/src/policy/policy-runtime.js';
import { issueSessionToken } from '../auth-service/src/services/session-token.js';
import { freePort, prepareNginxPrefix, REPO_ROOT, startNginx, waitForPort } from '../scripts/lib/nginx-runtime.js';
import { rawRequest } from '../tests/support/http.js';
import { randomBytes } from 'node:crypto';

const duration = Number(process.env.BENCH_DURATION ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

interface Scenario {
  key: string;
  label: string;
  port: number;
}

interface Sample {
  rps: number;
  p99ms: number;
}

function benchSite(p: { upstream: number; plain: number; gate: number; authreq: number; verifier: number }): string {
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

# (b) the gate, exactly as operators wire it
server {
    listen 127.0.0.1:${p.gate};
    access_log off;
    include snippets/gate-server.conf;
    location / {
        include snippets/protect.conf;
        proxy_pass http://bench_upstream;
    }
}

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

function runWrk(port: number, cookie: string): Sample {
  const res = spawnSync(
    'wrk',
    ['-t2', `-c${connections}`, `-d${duration}s`, '--latency', '-H', `Cookie: ${cookie}`, '-H', 'Accept: text/html', `http://127.0.0.1:${port}/bench`],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`wrk failed: ${res.stderr || res.error}`);
  const out = res.stdout;
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`scenario on port ${port} returned errors:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  if (!rps || !p99) throw new Error(`cannot parse wrk output:\n${out}`);
  const unit = p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1;
  return { rps, p99ms: Number(p99[1]) * unit };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function main(): Promise<void> {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: run `make deps-test`');
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const children: Array<ReturnType<typeof spawn>> = [];
  let stopNginx = async () => {};
  try {
    const ports = { upstream: await freePort(), plain: await freePort(), gate: await freePort(), authreq: await freePort(), verifier: await freePort() };
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
      buildGateConfig({ jwt: { secret, previousSecrets: [] }, session: { cookieName: 'gw_session', ipBinding: true, leewaySeconds: 30, ttlSeconds: 3600, cookieSecure: false } } as Parameters<typeof buildGateConfig>[0]),
    );
    writeFileSync(join(prefix, 'conf', 'runtime', 'policy.json'), JSON.stringify(POLICY_OFF));
    const nginx = await startNginx(prefix, ports.gate);
    stopNginx = () => nginx.stop();

    const { token } = issueSessionToken({
      identity: { sub: '00000000-0000-4000-8000-000000000001', username: 'kirk', name: 'James T. Kirk', email: 'kirk@enterprise.example', groups: ['Federation'], src: 'local' },
      ip: '127.0.0.1',
      secret,
      ttlSeconds: 3600,
      now: Date.now(),
    });
    const cookie = `gw_session=${token}`;

    const scenarios: Scenario[] = [
      { key: 'a', label: '(a) plain nginx proxy', port: ports.plain },
      { key: 'b', label: '(b) njs gate, valid session', port: ports.gate },
      { key: 'c', label: '(c) auth_request -> node:http + jsonwebtoken', port: ports.authreq },
    ];
    // Every scenario must really pass the session through before it is measured.
    for (const s of scenarios) {
      const r = await rawRequest(s.port, 'GET', '/bench', { cookie, accept: 'text/html' });
      if (r.status !== 200) throw new Error(`${s.label}: expected 200 with a valid session, got ${r.status}`);
    }

    const samples: Record<string, Sample[]> = { a: [], b: [], c: [] };
    // Warm-up, then interleave so drift (thermal, noisy neighbours) hits every scenario alike.
    for (const s of scenarios) runWrk(s.port, cookie);
    for (let round = 1; round <= rounds; round++) {
      for (const s of scenarios) {
        const sample = runWrk(s.port, cookie);
        samples[s.key].push(sample);
        console.error(`round ${round}/${rounds} ${s.label}: ${sample.rps.toFixed(0)} req/s, p99 ${sample.p99ms.toFixed(2)} ms`);
      }
    }

    const rps = (k: string) => median(samples[k].map((x) => x.rps));
    const p99 = (k: string) => median(samples[k].map((x) => x.p99ms));
    console.log(`\nBenchmark: ${rounds} interleaved rounds x ${duration}s, wrk -t2 -c${connections}, loopback, median per scenario`);
    console.log('scenario                                          req/s     p99 ms   ratio to (a)');
    for (const s of scenarios) {
      console.log(`${s.label.padEnd(48)} ${rps(s.key).toFixed(0).padStart(8)} ${p99(s.key).toFixed(2).padStart(10)} ${(rps(s.key) / rps('a')).toFixed(2).padStart(12)}`);
    }
    const ba = rps('b') / rps('a');
    const bc = rps('b') / rps('c');
    console.log(`\ntarget (b) >= 0.65 x (a): ${ba.toFixed(2)} ${ba >= 0.65 ? 'MET' : 'MISSED'}`);
    console.log(`target (b) >= 2.5 x (c):  ${bc.toFixed(2)} ${bc >= 2.5 ? 'MET' : 'MISSED'}`);
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
