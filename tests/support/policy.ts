/**
 * Helpers for the access-policy integration tests: the policy files, one access-log line per request,
 * a deliberately liberal path normaliser (what the most forgiving upstream could read), and nginx
 * restarted under libfaketime so the gate's clock can be set.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, startNginx, type RunningNginx } from '../../scripts/lib/nginx-runtime.js';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { startStack, type AccessLogEntry, type HttpResult, type Stack } from './stack.js';
import { claimsFor, signWith } from './tokens.js';

/** The documented example policy operators start from (the seed scenario). */
export const SEED_POLICY_FILE = join(REPO_ROOT, 'nginx', 'policy.yaml');

/** A policy file under tests/fixtures/policy/. */
export const policyFixture = (name: string): string => fileURLToPath(new URL(`../fixtures/policy/${name}`, import.meta.url));

/** Number of lines in nginx's access log now; pass it to `nextAccessLogEntry` before a request. */
export function accessLogLines(nginx: RunningNginx): number {
  return completeLines(nginx.accessLog()).length;
}

/** The newline-terminated lines of `text` (a line nginx is still writing is left out). */
function completeLines(text: string): string[] {
  const end = text.lastIndexOf('\n');
  return end < 0 ? [] : text.slice(0, end).split('\n');
}

/**
 * The access-log entry written right after line `before` (the request sent after counting), waiting
 * up to `timeoutMs`: nginx writes the line once the response has gone out. Only for a stack that
 * serves one request at a time, which the integration tests do (--runInBand, one test at a time).
 */
export async function nextAccessLogEntry(nginx: RunningNginx, before: number, timeoutMs = 3000): Promise<AccessLogEntry> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = completeLines(nginx.accessLog());
    if (lines.length > before) return JSON.parse(lines[before]) as AccessLogEntry;
    if (Date.now() >= deadline) throw new Error(`no access-log line after line ${before} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Sends one request through the stack's nginx and returns the response with the access-log entry
 * nginx wrote for it. Throws when the entry's status is not the response's (a line from another request).
 */
export async function requestLogged(
  stack: Stack,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ res: HttpResult; log: AccessLogEntry }> {
  const before = accessLogLines(stack.nginx);
  const res = await stack.request(method, target, headers, body);
  const log = await nextAccessLogEntry(stack.nginx, before);
  // Only the status is compared: a refusal is answered by an error_page redirect, after which nginx
  // logs GET as the method (see policy.test.ts, "the access log of a refusal names the refused method").
  if (log.status !== res.status) {
    throw new Error(`access-log line ${before} is not ${method} ${target} (${res.status}): ${JSON.stringify(log)}`);
  }
  return { res, log };
}

/**
 * Signs in through nginx (stack.login: GET and POST /login) and waits until both requests are in the
 * access log, so the next `requestLogged` reads its own line. Returns the session cookie (name=value).
 */
export async function signIn(stack: Stack, username: string, password: string): Promise<string> {
  const before = accessLogLines(stack.nginx);
  const { res, session } = await stack.login(username, password);
  if (session === null) throw new Error(`sign-in as ${username} failed with ${res.status}`);
  await nextAccessLogEntry(stack.nginx, before + 1);
  return session;
}

/**
 * What the most forgiving upstream could make of a path: `%XX` decoded until nothing changes,
 * backslash read as '/', `;params` cut from every segment, `.`/`..` resolved, empty segments
 * dropped, lower-cased. The query string is removed first. Used as an oracle: a protected prefix must
 * never be reachable under any of these readings.
 */
export function liberalNormalise(target: string): string {
  let p = target;
  const q = p.indexOf('?');
  if (q >= 0) p = p.slice(0, q);
  for (let i = 0; i < 10; i++) {
    const next = p.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (next === p) break;
    p = next;
  }
  p = p.replace(/\\/g, '/');
  const out: string[] = [];
  for (const raw of p.split('/')) {
    // Windows/IIS also drops trailing dots and spaces from a segment.
    const seg = raw.split(';')[0].replace(/[. ]+$/, (m) => (m === raw.split(';')[0] ? m : ''));
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return ('/' + out.join('/')).toLowerCase();
}

/** True when `path` (already normalised) is `prefix` or lies under `prefix/`. */
export function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix + '/');
}

/** libfaketime, as installed by Debian's libfaketime package. */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * Environment that starts nginx's clock (wall clock only: timers keep the real monotonic clock) at
 * `instant`, an ISO time in UTC such as '2027-01-04T08:30:00Z'. TZ=UTC so libfaketime reads the
 * start time as UTC whatever the machine's zone.
 *
 * FAKETIME_CACHE_DURATION matters: nginx empties its workers' environment (all but TZ), and
 * libfaketime re-reads FAKETIME from the environment when its cache expires, 10 s by default; from
 * then on the workers (and njs's Date.now) silently run on the real clock again (measured with
 * libfaketime 0.9.10 and nginx 1.22). A day-long cache keeps the faked clock for the whole run.
 */
export function fakeTimeEnv(instant: string): Record<string, string> {
  const d = new Date(instant);
  if (Number.isNaN(d.getTime()) || !instant.endsWith('Z')) throw new Error(`fakeTimeEnv wants an ISO UTC instant, got ${instant}`);
  const text = d.toISOString().slice(0, 19).replace('T', ' ');
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: `@${text}`, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_CACHE_DURATION: '86400', TZ: 'UTC' };
}

/**
 * Stops the stack's nginx and starts it again on the same prefix and port with `env` added (e.g.
 * `fakeTimeEnv(...)`). The returned nginx replaces `stack.nginx`; the caller stops it before
 * `stack.stop()` (which only stops the nginx it started itself).
 */
export async function restartNginx(stack: Stack, env: Record<string, string>): Promise<RunningNginx> {
  await stack.nginx.stop();
  const nginx = await startNginx(stack.nginx.prefix, stack.proxyPort, 10_000, { ...process.env, ...env });
  stack.nginx = nginx;
  return nginx;
}

/**
 * A session cookie (name=value) the gate accepts at `nowSeconds` and not before: iat and nbf are at
 * `nowSeconds` (minus a minute of slack), exp ten minutes later. Signed with the stack's active key.
 */
export function sessionCookieAt(stack: Stack, nowSeconds: number, overrides: Record<string, unknown> = {}): string {
  const claims = claimsFor('127.0.0.1', nowSeconds, { nbf: nowSeconds - 60, ...overrides });
  return `${stack.cookieName}=${signWith(headerSegmentFor(stack.secret), claims, stack.secret)}`;
}

/** A stack running the example nginx/policy.yaml, with kirk (Federation) and mccoy (Medical) signed in. */
export interface SeedStack {
  stack: Stack;
  /** Session cookie pairs (name=value). */
  kirk: string;
  mccoy: string;
}

export async function startSeedStack(): Promise<SeedStack> {
  const password = 'correct horse battery staple';
  const stack = await startStack({ env: { POLICY_FILE: SEED_POLICY_FILE } });
  try {
    await stack.createUser('kirk', password, { groups: ['Federation'], email: 'kirk@enterprise.example' });
    await stack.createUser('mccoy', password, { groups: ['Medical'], email: 'mccoy@enterprise.example' });
    return { stack, kirk: await signIn(stack, 'kirk', password), mccoy: await signIn(stack, 'mccoy', password) };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}
