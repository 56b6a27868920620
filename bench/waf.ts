/**
 * `make bench`, the WAF part (docs/waf.md "Cost"): what ModSecurity 3 + OWASP CRS costs on top of the
 * gate, measured in one interleaved run. Two nginx instances render the repo's own config, one with
 * WAF_MODE=Off (nothing of ModSecurity loaded) and one with WAF_MODE=On at paranoia level 1:
 *   (a)  plain nginx proxy_pass                                    [Off]
 *   (g)  the gate, signed in, no WAF                               [Off]
 *   (w)  the gate + WAF as shipped (gate first), signed in         [On]
 *   (wf) WAF first, then the gate (auth_request), signed in        [On]
 *   (s)  a static asset behind protect-static.conf (gate, no WAF)  [On]
 *   (j0) anonymous junk, the gate without WAF (302 to sign in)     [Off]
 *   (j1) anonymous junk, the gate first (as shipped)               [On]
 *   (j2) anonymous junk, WAF first, then the gate                  [On]
 * "WAF first" is a bench-only server: `modsecurity on` in a location that asks the gate through
 * auth_request, which nginx runs after ModSecurity's phases 1 and 2 (the shipped wiring runs the gate
 * in the rewrite phase, between them). Prints req/s, p99, CPU per request and the ratios.
 * Env: BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGateConfig, writeGateConfig } from '../auth-service/src/services/gate-config.js';
import { POLICY_OFF } from '../auth-service/src/policy/policy-runtime.js';
import { issueSessionToken } from '../auth-service/src/services/session-token.js';
import { type GroupSelection } from '../auth-service/src/services/group-selection.js';
import { freePort, prepareNginxPrefix, startNginx, type RunningNginx, type WafMode } from '../scripts/lib/nginx-runtime.js';
import { rawRequest } from '../tests/support/http.js';
import { childPids, connections, duration, measureInterleaved, median, requireWrk, rounds, runWrk, type Sample } from './load.js';

const PAGE = '/app/reports/q3?id=42&sort=name';
const ASSET = '/assets/app.3f9c2b.js';
const HOST = 'gateway.localhost';

interface Scenario {
  key: string;
  label: string;
  instance: 'off' | 'on';
  port: number;
  path: string;
  signedIn: boolean;
  /** What the check before measuring must get. */
  status: number;
}

function site(ports: { upstream: number; main: number; wafFirst?: number }): string {
  const wafFirst =
    ports.wafFirst === undefined
      ? ''
      : `
# WAF first (bench only): ModSecurity reads and judges the whole request, then the gate decides.
server {
    listen 127.0.0.1:${ports.wafFirst};
    access_log off;
    include snippets/gate-server.conf;
    location / {
        modsecurity on;
        auth_request /_bench_gate;
        error_page 401 = @bench_login;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://bench_upstream;
    }
    location = /_bench_gate {
        internal;
        if ($gate != "allow") {
            return 401;
        }
        return 204;
    }
    location @bench_login {
        return 302 /login;
    }
}
`;
  return `
upstream bench_upstream { server 127.0.0.1:${ports.upstream}; keepalive 64; }
upstream auth_service { server 127.0.0.1:9; }

# The upstream: nginx answering from memory, so it is never the bottleneck.
server {
    listen 127.0.0.1:${ports.upstream};
    access_log off;
    location / { return 200 "hello from upstream\\n"; }
}

# The gate as operators wire it (with WAF_MODE=On, protect.conf switches the WAF on here).
server {
    listen 127.0.0.1:${ports.main};
    access_log off;
    include snippets/gate-server.conf;
    location / {
        include snippets/protect.conf;
        proxy_pass http://bench_upstream;
    }
    location /assets/ {
        include snippets/protect-static.conf;
        proxy_pass http://bench_upstream;
    }
    location /plain/ {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://bench_upstream;
    }
}
${wafFirst}`;
}

async function startInstance(tmp: string, mode: WafMode, secret: string): Promise<{ nginx: RunningNginx; main: number; wafFirst?: number }> {
  const ports = { upstream: await freePort(), main: await freePort(), wafFirst: mode === 'Off' ? undefined : await freePort() };
  const { prefix, gateConfigFile } = prepareNginxPrefix({
    prefix: join(tmp, `nginx-${mode}`),
    vars: { PROXY_LISTEN: `127.0.0.1:${await freePort()}`, APP_UPSTREAM: '127.0.0.1:9', AUTH_UPSTREAM: '127.0.0.1:9', WAF_MODE: mode, WAF_PARANOIA_LEVEL: '1' },
    extraFiles: { 'sites/bench.conf': site(ports) },
  });
  rmSync(join(prefix, 'conf', 'sites', 'gateway.conf'));
  await writeGateConfig(
    gateConfigFile,
    buildGateConfig({ jwt: { secret, previousSecrets: [], previousKeys: [] }, session: { cookieName: 'gw_session', ipBinding: 'exact', leewaySeconds: 30, ttlSeconds: 3600, cookieSecure: false }, sessionLifetimes: { maxSeconds: 3600, idleSeconds: 3600 } } as Parameters<typeof buildGateConfig>[0]),
  );
  writeFileSync(join(prefix, 'conf', 'runtime', 'policy.json'), JSON.stringify(POLICY_OFF));
  return { nginx: await startNginx(prefix, ports.main, 20_000), main: ports.main, wafFirst: ports.wafFirst };
}

async function main(): Promise<void> {
  requireWrk();
  const tmp = mkdtempSync(join(tmpdir(), 'gw-bench-waf-'));
  const running: RunningNginx[] = [];
  try {
    const secret = randomBytes(48).toString('base64url');
    const off = await startInstance(tmp, 'Off', secret);
    running.push(off.nginx);
    const on = await startInstance(tmp, 'On', secret);
    running.push(on.nginx);
    const groupSelection: GroupSelection = { policyGroups: new Set(), payload: { all: true, exact: [], prefixes: [] } };
    const { token } = issueSessionToken({
      identity: { sub: '00000000-0000-4000-8000-000000000001', username: 'kirk', name: 'James T. Kirk', email: 'kirk@enterprise.example', groups: ['Federation'], src: 'local' },
      ip: '127.0.0.1',
      secret,
      ttlSeconds: 3600,
      now: Date.now(),
      groupSelection,
    });
    const cookie = `gw_session=${token}`;

    const scenarios: Scenario[] = [
      { key: 'a', label: '(a) plain proxy', instance: 'off', port: off.main, path: `/plain${PAGE}`, signedIn: false, status: 200 },
      { key: 'g', label: '(g) gate, signed in, no WAF', instance: 'off', port: off.main, path: PAGE, signedIn: true, status: 200 },
      { key: 'w', label: '(w) gate then WAF (shipped), signed in', instance: 'on', port: on.main, path: PAGE, signedIn: true, status: 200 },
      { key: 'wf', label: '(wf) WAF then gate, signed in', instance: 'on', port: on.wafFirst!, path: PAGE, signedIn: true, status: 200 },
      { key: 's', label: '(s) static asset, protect-static.conf', instance: 'on', port: on.main, path: ASSET, signedIn: true, status: 200 },
      { key: 'j0', label: '(j0) anonymous junk, gate, no WAF', instance: 'off', port: off.main, path: PAGE, signedIn: false, status: 302 },
      { key: 'j1', label: '(j1) anonymous junk, gate then WAF', instance: 'on', port: on.main, path: PAGE, signedIn: false, status: 302 },
      { key: 'j2', label: '(j2) anonymous junk, WAF then gate', instance: 'on', port: on.wafFirst!, path: PAGE, signedIn: false, status: 302 },
    ];
    const headersOf = (s: Scenario): Record<string, string> => ({ Host: HOST, Accept: 'text/html', 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', ...(s.signedIn ? { Cookie: cookie } : {}) });
    // Each scenario must answer as intended before it is measured, and the WAF must really be on in
    // the On instance (an SQL injection gets 403) and off in the Off one.
    for (const s of scenarios) {
      const r = await rawRequest(s.port, 'GET', s.path, headersOf(s));
      if (r.status !== s.status) throw new Error(`${s.label}: GET ${s.path} answered ${r.status}, expected ${s.status}`);
    }
    const attack = `/app/x?id=${encodeURIComponent("1' OR '1'='1' --")}`;
    for (const [port, status] of [[on.main, 403], [on.wafFirst!, 403], [off.main, 200]] as const) {
      const r = await rawRequest(port, 'GET', attack, { host: HOST, accept: 'text/html', cookie });
      if (r.status !== status) throw new Error(`the SQL injection on port ${port} answered ${r.status}, expected ${status}`);
    }

    const pids = { off: () => childPids(off.nginx.process.pid!), on: () => childPids(on.nginx.process.pid!) };
    const measure = (s: Scenario, seconds = duration): Sample => runWrk({ port: s.port, path: s.path, headers: headersOf(s) }, { nginx: pids[s.instance] }, seconds);
    const samples = measureInterleaved(scenarios, measure, 'waf ');

    const rps = (k: string) => median(samples[k].map((x) => x.rps));
    const p99 = (k: string) => median(samples[k].map((x) => x.p99ms));
    const cpu = (k: string) => median(samples[k].map((x) => x.cpuUs));
    console.log(`\nWAF benchmark (ModSecurity 3.0.9 + CRS 3.3.4, PL1): ${rounds} interleaved rounds x ${duration}s, wrk -t2 -c${connections}, loopback, median; GET ${PAGE}`);
    console.log('scenario                                      req/s     p99 ms   ratio to (g)   CPU us/req');
    for (const s of scenarios) {
      console.log(`${s.label.padEnd(44)} ${rps(s.key).toFixed(0).padStart(8)} ${p99(s.key).toFixed(2).padStart(10)} ${(rps(s.key) / rps('g')).toFixed(2).padStart(12)} ${cpu(s.key).toFixed(1).padStart(12)}`);
    }
    console.log('(CPU us/req: the instance\'s nginx workers, which also serve the upstream; excluding wrk.)');
    const compare = (what: string, x: string, y: string) =>
      console.log(`${what}: ${(cpu(x) - cpu(y)).toFixed(0)} us CPU/req more (${(cpu(x) / cpu(y)).toFixed(1)}x), ${(rps(x) / rps(y)).toFixed(2)}x the req/s`);
    console.log('');
    compare('the WAF on signed-in traffic, (w) vs (g)', 'w', 'g');
    compare('WAF first vs gate first, signed in, (wf) vs (w)', 'wf', 'w');
    compare('a static asset without the WAF vs a page with it, (s) vs (w)', 's', 'w');
    compare('anonymous junk, gate first vs no WAF, (j1) vs (j0)', 'j1', 'j0');
    compare('anonymous junk, WAF first vs gate first, (j2) vs (j1)', 'j2', 'j1');
  } finally {
    for (const n of running) await n.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
