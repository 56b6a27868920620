/**
 * Micro-benchmark of the shipped gate.check() in the njs CLI (not a test):
 *   node scripts/build-njs.mjs && njs njs/dist/gate-bench.js [COMPILED-POLICY.json ...]
 * Prints µs per call for an allowed request, a forged token and a missing cookie (no policy). For each
 * compiled policy file given (`make bench` passes its 10- and 1,000-rule policies), it also prints
 * gate.check() for a request the policy allows and one it refuses, and decideAccess() + policyPath()
 * alone for a few paths. Each line gives µs and the njs memory allocated per call (nginx frees that
 * memory after each request). The CLI runs in one VM, so this excludes nginx's per-request VM clone
 * and module re-run (see njs-notes): regexes are compiled once here, once per request in nginx. And
 * JSON.parse'd policies have the prototypes that preloaded ones lack.
 */
import gate from './gate.js';
import { COOKIE_NAME } from './cases/cookie-cases.js';
import { CLIENT_IP, UNKNOWN_KEY, makeConfig, signToken, validClaims, withClaims } from './cases/fixtures.js';
import { decideAccess } from '../src/core/policy.js';
import type { CompiledPolicy } from '../src/core/policy-contract.js';
import { policyPath } from '../src/core/request-path.js';

// Few calls: the CLI's single VM never frees memory (a gate.check() takes 15-60 KB), so long loops
// measure page faults instead of the gate.
const ITERATIONS = 2000;
const POLICY_ITERATIONS = 5000;
/** Allowed by the bench policies' federation-members rule for a member of Federation. */
const MEASURED_PATH = '/federation/reports/q3';
/** Refused by the bench policies' admin-others rule. */
const DENIED_PATH = '/admin/settings';

interface Globals {
  gate_config: unknown;
  gate_policy: unknown;
  /** njs's CommonJS loader; reached through globalThis so that esbuild leaves `fs` alone. */
  require(name: string): { readFileSync(path: string): { toString(): string } };
  /** njs's memory pool; nginx frees it after each request, the CLI never does. */
  njs: { memoryStats: { size: number } };
}
const globals = globalThis as unknown as Globals;

function request(cookie: string | undefined, uri: string): unknown {
  return {
    method: 'GET',
    headersIn: { Cookie: cookie, Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    variables: { request_uri: uri + '?tab=1', uri: uri, request_id: 'bench' },
    remoteAddress: CLIENT_IP,
    warn: function () {},
    error: function () {},
    log: function () {},
  };
}

/** Runs `fn` `iterations` times: µs per call, and bytes per call taken from the VM's memory pool. */
function perCall(iterations: number, fn: () => void): string {
  const m0 = globals.njs.memoryStats.size;
  const start = Date.now();
  for (let i = 0; i < iterations; i++) fn();
  const us = ((Date.now() - start) * 1000) / iterations;
  const kb = (globals.njs.memoryStats.size - m0) / iterations / 1024;
  return us.toFixed(2) + ' us/call, ' + kb.toFixed(1) + ' KB/call';
}

function measure(name: string, cookie: string | undefined, uri: string, expected: string, iterations?: number): void {
  const n = iterations || ITERATIONS;
  const r = request(cookie, uri);
  const got = gate.check(r) as string;
  if (got !== expected) throw new Error(name + ': expected ' + expected + ', got ' + got);
  const cost = perCall(n, function () {
    gate.check(r);
  });
  console.log(name + ': ' + cost + ' (' + n + ' calls)');
}

function measurePolicy(name: string, policy: CompiledPolicy, path: string, claims: { [claim: string]: unknown }): void {
  const req = { method: 'GET', path: '', claims: claims, remoteAddr: CLIENT_IP, now: Math.floor(Date.now() / 1000) };
  const once = function (): string {
    const p = policyPath(path, path);
    if (p === null) throw new Error(name + ': ambiguous path ' + path);
    req.path = p;
    const d = decideAccess(policy, req);
    return d.decision + ' by ' + d.rule + ', ' + d.examined + ' examined';
  };
  const outcome = once();
  const cost = perCall(POLICY_ITERATIONS, once);
  console.log(name + ': ' + cost + ' (' + outcome + ')');
}

globals.gate_config = makeConfig();
globals.gate_policy = { version: 1, off: true };
const now = Math.floor(Date.now() / 1000);
const kirk = withClaims(validClaims(now), { username: 'kirk', groups: ['Federation'], email: 'kirk@enterprise.example' });
const cookie = 'theme=dark; ' + COOKIE_NAME + '=' + signToken(kirk) + '; lang=en';
measure('allow (valid token, 2 other cookies), no policy', cookie, MEASURED_PATH, 'allow');
// X-Payload-groups of a user in many groups: plain ASCII names take the fast path, a list with
// non-ASCII names is percent-encoded item by item (core/decide.ts listText).
const asciiGroups: string[] = [];
const accentedGroups: string[] = [];
for (let i = 0; i < 250; i++) {
  asciiGroups.push('Sales Region ' + i + ' Field Team');
  accentedGroups.push('Vertrieb Region ' + i + ' Außendienst');
}
const asciiCookie = COOKIE_NAME + '=' + signToken(withClaims(kirk, { groups: asciiGroups }));
const accentedCookie = COOKIE_NAME + '=' + signToken(withClaims(kirk, { groups: accentedGroups }));
// Few calls: each takes MBs from the CLI's never-freed pool.
measure('allow, 250 ASCII groups, no policy', asciiCookie, MEASURED_PATH, 'allow', 100);
measure('allow, 250 non-ASCII groups, no policy', accentedCookie, MEASURED_PATH, 'allow', 100);
measure('deny/login (token signed with an unknown key)', COOKIE_NAME + '=' + signToken(kirk, UNKNOWN_KEY), MEASURED_PATH, 'login');
measure('login (no cookie)', undefined, MEASURED_PATH, 'login');

const files = process.argv.slice(2);
for (let i = 0; i < files.length; i++) {
  const policy = JSON.parse(globals.require('fs').readFileSync(files[i]).toString()) as CompiledPolicy;
  const label = policy.rules.length + ' rules';
  globals.gate_policy = policy;
  measure('[' + label + '] allow ' + MEASURED_PATH, cookie, MEASURED_PATH, 'allow');
  measure('[' + label + '] forbidden ' + DENIED_PATH, cookie, DENIED_PATH, 'forbidden');
  measurePolicy('[' + label + '] policyPath+decideAccess ' + MEASURED_PATH, policy, MEASURED_PATH, kirk);
  measurePolicy('[' + label + '] policyPath+decideAccess /app-0040/a/b/c/d/e', policy, '/app-0040/a/b/c/d/e', kirk);
  measurePolicy('[' + label + '] policyPath+decideAccess /no/rule/here/at/all', policy, '/no/rule/here/at/all', kirk);
}
