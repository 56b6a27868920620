/**
 * The signed identity assertion (issue 12) on the real stack: the repo's nginx, the auth service with
 * ASSERTION_KEY_FILE, PostgreSQL, and two apps on one host (the default app at `/`, `finance` at
 * `/finance/`). The upstream must receive an X-Gateway-Assertion that verifies against the JWKS nginx
 * serves, with the right `aud` per app, and never a client's or another session's.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { setCookies, stackTest, startStack, type HttpResult, type Stack } from '../support/stack.js';

const PASSWORD = 'assertion test password 42';
const ISSUER = 'identity-gateway';
const ASR = 'gw_session_asr';
const FINANCE_ASR = 'gw_session_asr_finance';

/** `name=value` of each cookie a response sets, by name. */
function cookiesSet(res: HttpResult): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of setCookies(res)) {
    const pair = line.split(';')[0]!;
    out[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  }
  return out;
}

/** nginx writes the access log line after the answer is sent: wait for it (up to 3 s). */
async function accessLogShows(stack: Stack, text: string): Promise<boolean> {
  for (let i = 0; i < 60; i++) {
    if (stack.nginx.accessLog().includes(text)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function pem(kind: 'ec' | 'ed25519', part: 'private' | 'public'): string {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return part === 'private' ? (pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string) : (pair.publicKey.export({ format: 'pem', type: 'spki' }) as string);
}

describe('signed identity assertion through nginx', () => {
  let stack: Stack;
  let dir: string;
  const test = stackTest(() => stack);
  /** A browser's cookie jar for one user: name -> value. */
  type Jar = Record<string, string>;
  const header = (jar: Jar) => Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-asr-'));
    writeFileSync(join(dir, 'active.pem'), pem('ec', 'private'), { mode: 0o600 });
    writeFileSync(join(dir, 'next.pem'), pem('ed25519', 'private'), { mode: 0o600 });
    writeFileSync(join(dir, 'previous.pub.pem'), pem('ed25519', 'public'));
    // A named app must have a section in the access policy (issue 12's apps).
    writeFileSync(join(dir, 'policy.yaml'), 'default: allow\napps:\n  finance:\n    default: allow\n');
    stack = await startStack({
      // Federation travels by name; other groups only in the count and digest, as in X-Payload-groups*.
      env: { ASSERTION_KEY_FILE: join(dir, 'active.pem'), ASSERTION_PREVIOUS_KEY_FILES: join(dir, 'previous.pub.pem'), PAYLOAD_GROUPS: 'Federation', POLICY_FILE: join(dir, 'policy.yaml') },
      // A second app on the same host, named as issue 12 names apps.
      editSite: (t) =>
        t.replace('    location / {', '    location /finance/ {\n        set $gate_app finance;\n        include snippets/protect.conf;\n        proxy_pass http://protected_app/finance/;\n    }\n\n    location / {'),
    });
    await stack.createUser('kirk', PASSWORD, { groups: ['Federation', 'Bridge'], email: 'kirk@example.org', fullName: 'James T. Kirk' });
    await stack.createUser('spock', PASSWORD, { groups: ['Science'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function jwks(): Promise<JSONWebKeySet> {
    const res = await stack.request('GET', '/.well-known/gateway/jwks.json');
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toContain('application/json');
    return JSON.parse(res.body) as JSONWebKeySet;
  }
  async function verify(assertion: string, audience: string) {
    return (await jwtVerify(assertion, createLocalJWKSet(await jwks()), { issuer: ISSUER, audience, algorithms: ['ES256', 'EdDSA'] })).payload;
  }
  async function signIn(name: string): Promise<Jar> {
    const { session } = await stack.login(name, PASSWORD, '/');
    expect(session).not.toBeNull();
    return { gw_session: session!.split('=')[1]! };
  }
  /** GET through nginx with the jar; the jar takes what the answer sets. Returns the answer and what the app saw. */
  async function get(jar: Jar, path: string, extra: Record<string, string> = {}) {
    const before = stack.upstream.seen.length;
    const res = await stack.request('GET', path, { cookie: header(jar), accept: 'application/json', ...extra });
    Object.assign(jar, cookiesSet(res));
    const seen = stack.upstream.seen.length > before ? stack.upstream.seen.at(-1)! : null;
    return { res, seen };
  }

  test('the upstream gets a verifiable assertion with the identity claims, aud = the default app, and no gateway cookie', async () => {
    const jar = await signIn('kirk');
    // The first request gets the app's assertion from the auth service (no store query), bound to
    // the sign-in token, which stays as it is.
    const session = jar.gw_session;
    const first = await get(jar, '/hello');
    expect(first.res.status).toBe(200);
    expect(Object.keys(cookiesSet(first.res))).toEqual([ASR]);
    expect(jar.gw_session).toBe(session);
    const seen = first.seen!;
    const assertion = String(seen.headers['x-gateway-assertion']);
    expect(assertion).toBe(jar[ASR]);
    const claims = await verify(assertion, ISSUER);
    expect(claims).toMatchObject({ iss: ISSUER, aud: ISSUER, username: 'kirk', user: 'local:kirk', name: 'James T. Kirk', email: 'kirk@example.org', src: 'local' });
    expect(claims.groups).toEqual(['Federation']);
    expect(claims.groups_count).toBe(2);
    expect(claims.groups_digest).toBe(seen.headers['x-payload-groups_digest']);
    expect(claims.sub).toBe(seen.headers['x-payload-sub']);
    // Internal claims stay internal; sid stays in X-Payload-sid (every byte costs on every request).
    for (const internal of ['ip', 'sid', 'email_verified', 'tta']) expect(claims).not.toHaveProperty(internal);
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
    expect(String(seen.headers.cookie ?? '')).not.toContain('gw_session');
    expect(decodeProtectedHeader(assertion)).toMatchObject({ alg: 'ES256' });
    expect(await accessLogShows(stack, '"reason":"assertion-issued"')).toBe(true);

    // Next request: the bound cookie is forwarded as it is, no call to the auth service, nothing set.
    const second = await get(jar, '/again');
    expect(second.res.status).toBe(200);
    expect(setCookies(second.res)).toEqual([]);
    expect(second.seen!.headers['x-gateway-assertion']).toBe(assertion);
  });

  test('each app gets its own assertion (aud = its name), issued without renewing the session', async () => {
    const jar = await signIn('kirk');
    await get(jar, '/');
    const session = jar.gw_session;
    const finance = await get(jar, '/finance/report');
    expect(finance.res.status).toBe(200);
    expect(finance.seen!.url).toBe('/finance/report');
    // Only the finance assertion was set; the session token is the same.
    expect(Object.keys(cookiesSet(finance.res))).toEqual([FINANCE_ASR]);
    expect(jar.gw_session).toBe(session);
    const claims = await verify(String(finance.seen!.headers['x-gateway-assertion']), 'finance');
    expect(claims.username).toBe('kirk');
    await expect(verify(String(finance.seen!.headers['x-gateway-assertion']), ISSUER)).rejects.toThrow();
    // Both cookies stay bound: no further issuing on either app.
    expect(setCookies((await get(jar, '/x')).res)).toEqual([]);
    expect(setCookies((await get(jar, '/finance/y')).res)).toEqual([]);
  });

  test('a forged, tampered or client-sent assertion never reaches the upstream: it is replaced by a bound one', async () => {
    const jar = await signIn('kirk');
    await get(jar, '/');
    const good = jar[ASR]!;
    const [h, p] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ bind: 'x', username: 'admin' })).toString('base64url')}.AAAA`;
    for (const bad of [forged, `${h}.${p}.${'A'.repeat(86)}`.replace(p!, p!.slice(0, 12) + 'A'.repeat(16) + p!.slice(28)), 'garbage']) {
      jar[ASR] = bad;
      const r = await get(jar, '/f', { 'x-gateway-assertion': good + 'x', 'x-gateway-app': 'finance' });
      expect(r.res.status).toBe(200);
      const sent = String(r.seen!.headers['x-gateway-assertion']);
      expect(sent).not.toBe(bad);
      expect(sent).toBe(jar[ASR]);
      expect((await verify(sent, ISSUER)).username).toBe('kirk');
    }
  });

  test("another user's assertion cookie is not forwarded with this session: the app sees this user's", async () => {
    const kirk = await signIn('kirk');
    await get(kirk, '/');
    const spock = await signIn('spock');
    await get(spock, '/');
    const swapped: Jar = { ...kirk, [ASR]: spock[ASR]! };
    const r = await get(swapped, '/who');
    expect(r.res.status).toBe(200);
    const claims = await verify(String(r.seen!.headers['x-gateway-assertion']), ISSUER);
    expect(claims.username).toBe('kirk');
    expect(swapped[ASR]).not.toBe(spock[ASR]);
    // A duplicate cookie (e.g. one planted for a parent domain) is not guessed between either.
    const dup = await stack.request('GET', '/dup', { cookie: `${header(kirk)}; ${ASR}=${spock[ASR]}`, accept: 'application/json' });
    expect(dup.status).toBe(200);
    expect((await verify(String(stack.upstream.seen.at(-1)!.headers['x-gateway-assertion']), ISSUER)).username).toBe('kirk');
  });

  test("sign-out deletes this host's assertion cookies with the session cookie", async () => {
    const jar = await signIn('kirk');
    await get(jar, '/');
    await get(jar, '/finance/');
    const out = await stack.request('POST', '/logout', { cookie: header(jar), origin: stack.baseUrl, 'content-length': '0' }, '');
    const cleared = setCookies(out).filter((c) => /Max-Age=0/.test(c)).map((c) => c.split('=')[0]);
    expect(cleared.sort()).toEqual(['gw_session', ASR, FINANCE_ASR].sort());
  });

  test('without a valid session nothing is issued and the upstream sees nothing', async () => {
    const spock = await signIn('spock');
    await get(spock, '/');
    const before = stack.upstream.seen.length;
    const res = await stack.request('GET', '/private', { cookie: `${ASR}=${spock[ASR]}`, accept: 'application/json' });
    expect(res.status).toBe(401);
    expect(stack.upstream.seen.length).toBe(before);
    expect(setCookies(res).some((c) => c.startsWith(ASR))).toBe(false);
  });

  test('the JWKS lists the active key and the previous one; after a rotation old assertions still verify', async () => {
    const before = await jwks();
    expect(before.keys.map((k) => [k.kty, k.alg, k.use])).toEqual([
      ['EC', 'ES256', 'sig'],
      ['OKP', 'EdDSA', 'sig'],
    ]);
    expect(before.keys.every((k) => typeof k.kid === 'string' && !('d' in k))).toBe(true);
    const jar = await signIn('kirk');
    await get(jar, '/');
    const old = jar[ASR]!;

    // Rotation: the Ed25519 key signs, the P-256 key is published as the previous one.
    await stack.restartAuthService({ ASSERTION_KEY_FILE: join(dir, 'next.pem'), ASSERTION_PREVIOUS_KEY_FILES: join(dir, 'active.pem') });
    const after = await jwks();
    expect(after.keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES256']);
    expect(after.keys[1]!.kid).toBe(before.keys[0]!.kid);
    expect((await verify(old, ISSUER)).username).toBe('kirk');
    // New assertions are signed with the new key (a new app's assertion is issued now).
    const finance = await get(jar, '/finance/');
    expect(decodeProtectedHeader(String(finance.seen!.headers['x-gateway-assertion']))).toMatchObject({ alg: 'EdDSA', kid: after.keys[0]!.kid });
    await stack.restartAuthService({});
  });

  test('examples/verify-assertion/verify-assertion.mjs verifies a real assertion against the JWKS nginx serves', async () => {
    const jar = await signIn('kirk');
    const r = await get(jar, '/finance/');
    const assertion = String(r.seen!.headers['x-gateway-assertion']);
    const run = (audience: string) =>
      promisify(execFile)(process.execPath, [join(REPO_ROOT, 'examples', 'verify-assertion', 'verify-assertion.mjs'), assertion], {
        env: { PATH: process.env.PATH, GATEWAY_URL: stack.baseUrl, APP_AUDIENCE: audience },
      });
    const { stdout } = await run('finance');
    expect(JSON.parse(stdout)).toMatchObject({ username: 'kirk', aud: 'finance', iss: ISSUER });
    await expect(run('payroll')).rejects.toThrow(/aud/);
  });
});

describe('signed identity assertion across a silent renewal', () => {
  let stack: Stack;
  let dir: string;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-asr-renew-'));
    writeFileSync(join(dir, 'key.pem'), pem('ed25519', 'private'), { mode: 0o600 });
    // Tokens live 2 s (leeway 0): the test waits for expiry rather than forging an expired token.
    stack = await startStack({ env: { ASSERTION_KEY_FILE: join(dir, 'key.pem'), SESSION_TOKEN_TTL_SECONDS: '2', SESSION_LEEWAY_SECONDS: '0' } });
    await stack.createUser('kirk', PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an expired token is renewed with a new assertion in the same request; the old assertion is no longer forwarded', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    const jar: Record<string, string> = { gw_session: session!.split('=')[1]! };
    const send = async (path: string, cookies: Record<string, string>) => {
      const res = await stack.request('GET', path, { cookie: Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; '), accept: 'application/json' });
      return { res, set: cookiesSet(res), seen: stack.upstream.seen.at(-1)! };
    };
    const first = await send('/a', jar);
    Object.assign(jar, first.set);
    const oldAssertion = jar[ASR]!;
    const oldSession = jar.gw_session!;
    const exp = JSON.parse(Buffer.from(oldSession.split('.')[1]!, 'base64url').toString()).exp as number;
    await new Promise((r) => setTimeout(r, (exp + 1) * 1000 + 50 - Date.now()));

    const renewed = await send('/b', jar);
    expect(renewed.res.status).toBe(200);
    expect(Object.keys(renewed.set).sort()).toEqual(['gw_session', ASR]);
    expect(renewed.set[ASR]).not.toBe(oldAssertion);
    expect(renewed.seen.headers['x-gateway-assertion']).toBe(renewed.set[ASR]);
    expect(await accessLogShows(stack, '"reason":"session-renewed"')).toBe(true);
    const jwks = JSON.parse((await stack.request('GET', '/.well-known/gateway/jwks.json')).body) as JSONWebKeySet;
    const { payload } = await jwtVerify(renewed.set[ASR]!, createLocalJWKSet(jwks), { issuer: ISSUER, audience: ISSUER, algorithms: ['EdDSA'] });
    expect(payload.exp).toBe(JSON.parse(Buffer.from(renewed.set.gw_session!.split('.')[1]!, 'base64url').toString()).exp);

    // The new token with the old assertion: not bound, replaced (no store query: the token is valid).
    const stale = await send('/c', { gw_session: renewed.set.gw_session!, [ASR]: oldAssertion });
    expect(stale.res.status).toBe(200);
    expect(Object.keys(stale.set)).toEqual([ASR]);
    expect(stale.seen.headers['x-gateway-assertion']).not.toBe(oldAssertion);
  }, 30_000);
});
