/**
 * Issue 9, through the real nginx + auth service + PostgreSQL: the gate bounds a session's age from
 * `iat`, refuses a previous key after its retirement time, binds sessions to the exact address, its
 * /24 or /64, and a key rotation (new key, old one previous with a retirement time, restart + reload)
 * logs nobody out. Each refusal asserts the status, the reason in the access log and that the
 * upstream saw nothing.
 */
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect } from '@jest/globals';
import { headerSegmentFor } from '../../auth-service/src/services/gate-config.js';
import { freePort } from '../../scripts/lib/nginx-runtime.js';
import { fakeTimeEnv, restartNginx } from '../support/policy.js';
import { accessLogEntry, rawRequest, setCookies, stackTest, startStack, strongSecret, type HttpResult, type Stack } from '../support/stack.js';
import { claimsFor, nowSeconds, signWith } from '../support/tokens.js';

const PASSWORD = 'correct horse battery staple';
const MAX = 3600;
const LEEWAY = 30;
const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

/** GET /private as an API client with `cookie`, optionally from another local source address. */
function apiGet(stack: Stack, cookie: string, localAddress?: string): Promise<HttpResult> {
  return rawRequest(stack.proxyPort, 'GET', '/private', { accept: 'application/json', cookie }, undefined, localAddress);
}

/** Expects a 401 with `reason` in the body and the access log, and nothing at the upstream. */
async function expectRefused(stack: Stack, res: HttpResult, reason: string): Promise<void> {
  expect(res.status).toBe(401);
  expect(JSON.parse(res.body)).toMatchObject({ error: 'unauthenticated', reason });
  expect(stack.upstream.seen).toHaveLength(0);
  expect(await accessLogEntry(stack.nginx, (l) => l.reason === reason && l.status === 401)).toBeDefined();
}

describe('maximum session age and retired keys (exact IP binding, the default)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const dropped = strongSecret();
  const previous = strongSecret();

  beforeAll(async () => {
    const now = nowSeconds();
    stack = await startStack({
      env: {
        SESSION_TTL_SECONDS: String(MAX),
        SESSION_LEEWAY_SECONDS: String(LEEWAY),
        // One key still in its grace period, one whose grace period had ended before start-up.
        JWT_PREVIOUS_SECRETS: `${previous}@${iso(now + 86_400)},${dropped}@${iso(now - 60)}`,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  const cookieOf = (secret: string, claims: Record<string, unknown>) => `gw_session=${signWith(headerSegmentFor(secret), claims, secret)}`;

  test('a session just inside the maximum age passes', async () => {
    const now = nowSeconds();
    const res = await apiGet(stack, cookieOf(stack.secret, claimsFor('127.0.0.1', now - MAX, { exp: now + 600 })));
    expect(res.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
  });

  test('a token whose iat is older than the maximum is refused as token-too-old, though its exp is a year ahead, and logged at warn', async () => {
    const now = nowSeconds();
    const cookie = cookieOf(stack.secret, claimsFor('127.0.0.1', now - MAX - LEEWAY - 5, { exp: now + 365 * 86_400 }));
    await expectRefused(stack, await apiGet(stack, cookie), 'token-too-old');
    expect(stack.nginx.errorLog()).toMatch(/\[warn\].*reason=token-too-old/);
    expect(stack.nginx.errorLog()).not.toContain(cookie.split('.')[2]);
  });

  test('a token issued in the future (beyond the leeway) is refused', async () => {
    const now = nowSeconds();
    await expectRefused(stack, await apiGet(stack, cookieOf(stack.secret, claimsFor('127.0.0.1', now + 300, { exp: now + 900 }))), 'token-not-yet-valid');
  });

  test('a token without iat is refused as malformed', async () => {
    await expectRefused(stack, await apiGet(stack, cookieOf(stack.secret, claimsFor('127.0.0.1', nowSeconds(), { iat: undefined }))), 'token-malformed');
  });

  test('a previous key within its grace period still passes', async () => {
    const res = await apiGet(stack, cookieOf(previous, claimsFor('127.0.0.1', nowSeconds())));
    expect(res.status).toBe(200);
  });

  test('a key already retired at start-up is left out of the gate config (notice logged, secret never) and its tokens are refused as token-key-retired', async () => {
    await expectRefused(stack, await apiGet(stack, cookieOf(dropped, claimsFor('127.0.0.1', nowSeconds()))), 'token-key-retired');
    expect(stack.nginx.errorLog()).toMatch(/\[warn\].*reason=token-key-retired/);
    const gateConfig = readFileSync(join(stack.nginx.prefix, 'conf', 'runtime', 'gate-config.json'), 'utf8');
    expect(gateConfig).not.toContain(dropped);
    expect(gateConfig).toContain(previous);
    expect(stack.authLogs()).toContain('"event":"previous_key_ended"');
    expect(stack.authLogs()).not.toContain(dropped);
    expect(stack.authLogs()).not.toContain(previous);
  });

  test('exact binding: another address in the same /24 is refused as ip-mismatch and logged at warn', async () => {
    const { session } = await signInAlice(stack);
    expect((await apiGet(stack, session!)).status).toBe(200);
    stack.upstream.reset();
    await expectRefused(stack, await apiGet(stack, session!, '127.0.0.2'), 'ip-mismatch');
    expect(stack.nginx.errorLog()).toMatch(/\[warn\].*reason=ip-mismatch/);
  });
});

let users = 0;
/** Creates a fresh user and signs in from 127.0.0.1 through nginx. */
async function signInAlice(stack: Stack): Promise<{ session: string | null }> {
  const name = `alice${++users}`;
  await stack.createUser(name, PASSWORD);
  const { res, session } = await stack.login(name, PASSWORD);
  expect(res.status).toBe(302);
  expect(session).not.toBeNull();
  return { session };
}

/** GET /private over IPv6 from ::1 to nginx's [::1] listener. */
function apiGetV6(port: number, cookie: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '::1', family: 6, port, method: 'GET', path: '/private', headers: { accept: 'application/json', cookie }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('SESSION_IP_BINDING=subnet', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let v6Port: number;

  beforeAll(async () => {
    v6Port = await freePort();
    stack = await startStack({
      env: { SESSION_IP_BINDING: 'subnet' },
      editSite: (site) => site.replace('    listen ${PROXY_LISTEN};', `    listen \${PROXY_LISTEN};\n    listen [::1]:${v6Port};`),
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  test('a session signed in from 127.0.0.1 works from 127.0.0.2 (same /24) and is refused from 127.0.1.1 (next /24)', async () => {
    const { session } = await signInAlice(stack);
    const moved = await apiGet(stack, session!, '127.0.0.2');
    expect(moved.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);
    expect(await accessLogEntry(stack.nginx, (l) => l.remote_addr === '127.0.0.2' && l.status === 200)).toBeDefined();
    stack.upstream.reset();
    await expectRefused(stack, await apiGet(stack, session!, '127.0.1.1'), 'ip-mismatch');
    expect(stack.nginx.errorLog()).toMatch(/\[warn\].*reason=ip-mismatch/);
  });

  test('IPv6: a token bound to another address of the same /64 passes from ::1; one from another /64 or bound to IPv4 is refused', async () => {
    const header = headerSegmentFor(stack.secret);
    const bound = (ip: string) => `gw_session=${signWith(header, claimsFor(ip, nowSeconds()), stack.secret)}`;
    expect((await apiGetV6(v6Port, bound('::2'))).status).toBe(200);
    expect((await apiGetV6(v6Port, bound('0:0:0:0:ffff::9'))).status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(2);
    stack.upstream.reset();
    const otherNet = await apiGetV6(v6Port, bound('2001:db8::1'));
    expect(otherNet.status).toBe(401);
    expect(JSON.parse(otherNet.body).reason).toBe('ip-mismatch');
    const v4 = await apiGetV6(v6Port, bound('127.0.0.1'));
    expect(v4.status).toBe(401);
    expect(stack.upstream.seen).toHaveLength(0);
    expect(await accessLogEntry(stack.nginx, (l) => l.remote_addr === '::1' && l.reason === 'ip-mismatch')).toBeDefined();
  });
});

describe('key rotation: nobody is logged out, new sessions use the new key, the old key ends at its retirement time', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const keyA = strongSecret();
  const keyB = strongSecret();
  let retiredAt: number;

  beforeAll(async () => {
    // Tokens live an hour here: the test moves nginx's clock ten minutes ahead of the auth service's,
    // and renewal (which the service does on the real clock) is not what this test is about.
    stack = await startStack({ env: { JWT_SECRET: keyA, JWT_PREVIOUS_SECRETS: '', SESSION_TOKEN_TTL_SECONDS: '3600', SESSION_IDLE_SECONDS: '7200' } });
  }, 60_000);
  afterAll(async () => {
    // restartNginx replaced the stack's nginx; stop that one too (stack.stop() knows only the first).
    await stack?.nginx.stop();
    await stack?.stop();
  });
  beforeEach(() => stack.upstream.reset());

  test('the whole procedure', async () => {
    // Signed in with key A.
    const { session: oldCookie } = await signInAlice(stack);
    expect(oldCookie!.split('=')[1]!.split('.')[0]).toBe(headerSegmentFor(keyA));
    expect((await apiGet(stack, oldCookie!)).status).toBe(200);

    // Rotate: B signs, A is previous until its retirement time; restart the service, reload nginx.
    retiredAt = nowSeconds() + 600;
    await stack.restartAuthService({ JWT_SECRET: keyB, JWT_PREVIOUS_SECRETS: `${keyA}@${iso(retiredAt)}` });
    const reload = stack.nginx.reload();
    expect(reload).toMatchObject({ ok: true });

    // The old cookie still works.
    stack.upstream.reset();
    const still = await apiGet(stack, oldCookie!);
    expect(still.status).toBe(200);
    expect(stack.upstream.seen).toHaveLength(1);

    // Renewal re-signs the old session with B: same sid, new key.
    const renewal = await rawRequest(stack.authPort, 'POST', '/auth/renew', { cookie: oldCookie! });
    expect(renewal.status).toBe(204);
    const renewed = setCookies(renewal)[0]!.split(';')[0]!;
    expect(renewed.split('=')[1]!.split('.')[0]).toBe(headerSegmentFor(keyB));
    expect((await apiGet(stack, renewed)).status).toBe(200);

    // A fresh sign-in is signed with B.
    const { session: newCookie } = await signInAlice(stack);
    expect(newCookie!.split('=')[1]!.split('.')[0]).toBe(headerSegmentFor(keyB));
    expect((await apiGet(stack, newCookie!)).status).toBe(200);

    // After A's retirement time (nginx's clock moved past it): A's cookie is refused, B's works.
    await restartNginx(stack, fakeTimeEnv(iso(retiredAt + 60)));
    stack.upstream.reset();
    await expectRefused(stack, await apiGet(stack, oldCookie!), 'token-key-retired');
    expect(stack.nginx.errorLog()).toMatch(/\[warn\].*reason=token-key-retired/);
    expect(stack.nginx.errorLog()).not.toContain(keyA);
    expect((await apiGet(stack, newCookie!)).status).toBe(200);
    // One second before the retirement time it still passed (no one is logged out early).
    await restartNginx(stack, fakeTimeEnv(iso(retiredAt - 1)));
    expect((await apiGet(stack, oldCookie!)).status).toBe(200);
  }, 60_000);
});
