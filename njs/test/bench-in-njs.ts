/**
 * Micro-benchmark of the shipped gate.check() in the njs CLI (not a test):
 *   node scripts/build-njs.mjs && njs njs/dist/gate-bench.js
 * Prints µs per call for an allowed request, a forged token and a missing cookie. The CLI runs in
 * one VM, so this excludes nginx's per-request VM clone and module re-run (see njs-notes).
 */
import gate from './gate.js';
import { COOKIE_NAME } from './cases/cookie-cases.js';
import { CLIENT_IP, UNKNOWN_KEY, makeConfig, signToken, validClaims } from './cases/fixtures.js';

const ITERATIONS = 20000;

function request(cookie: string | undefined): unknown {
  return {
    headersIn: { Cookie: cookie, Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    variables: { request_uri: '/app/dashboard?tab=1', request_id: 'bench' },
    remoteAddress: CLIENT_IP,
    warn: function () {},
    error: function () {},
    log: function () {},
  };
}

function measure(name: string, cookie: string | undefined, expected: string): void {
  const r = request(cookie);
  if (gate.check(r) !== expected) throw new Error(name + ': expected ' + expected);
  const start = Date.now();
  for (let i = 0; i < ITERATIONS; i++) gate.check(r);
  const us = ((Date.now() - start) * 1000) / ITERATIONS;
  console.log(name + ': ' + us.toFixed(2) + ' us/call (' + ITERATIONS + ' calls)');
}

(globalThis as unknown as { gate_config: unknown }).gate_config = makeConfig();
const now = Math.floor(Date.now() / 1000);
const token = signToken(validClaims(now));
measure('allow (valid token, 2 other cookies)', 'theme=dark; ' + COOKIE_NAME + '=' + token + '; lang=en', 'allow');
measure('deny/login (token signed with an unknown key)', COOKIE_NAME + '=' + signToken(validClaims(now), UNKNOWN_KEY), 'login');
measure('login (no cookie)', undefined, 'login');
