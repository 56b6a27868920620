import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ASSERTION_PAYLOAD_PREFIX } from '../../../njs/src/core/assertion.js';
import { loadConfig } from '../config.js';
import { assertionCookieLine, assertionJwks, clearAssertionCookies, signAssertion, type AssertionConfig } from './assertion.js';
import { issueSessionToken } from './session-token.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-asr-unit-'));
function keyFile(name: string, kind: 'ec' | 'ed25519' | 'rsa' | 'p384', part: 'private' | 'public' = 'private'): string {
  const pair =
    kind === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : kind === 'p384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : kind === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ed25519');
  const file = join(dir, name);
  writeFileSync(file, part === 'private' ? pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) : pair.publicKey.export({ format: 'pem', type: 'spki' }));
  return file;
}
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const SECRET = randomBytes(48).toString('base64url');
const BASE = { JWT_SECRET: SECRET, DATABASE_URL: 'postgres://gw@127.0.0.1/gw' };

function assertionConfig(env: Record<string, string>): AssertionConfig {
  const loaded = loadConfig({ ...BASE, ...env });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config.assertion!;
}
function session(groups = ['Federation']) {
  return issueSessionToken({
    identity: { sub: 'u-1', username: 'kirk', name: 'James T. Kirk', email: 'kirk@example.org', emailVerified: true, groups, src: 'local' },
    ip: '203.0.113.7',
    secret: SECRET,
    ttlSeconds: 300,
    now: NOW_MS,
    groupSelection: { policyGroups: new Set<string>(), payload: { all: true, exact: [], prefixes: [] } },
  });
}

describe('ASSERTION_KEY_FILE and ASSERTION_PREVIOUS_KEY_FILES', () => {
  it('off when unset: no assertion config', () => {
    const loaded = loadConfig(BASE);
    expect(loaded.ok && loaded.config.assertion).toBeNull();
  });
  it.each([
    ['a P-256 key signs ES256', 'ec', 'ES256'],
    ['an Ed25519 key signs EdDSA', 'ed25519', 'EdDSA'],
  ] as const)('%s', (_name, kind, alg) => {
    const c = assertionConfig({ ASSERTION_KEY_FILE: keyFile(`${kind}.pem`, kind) });
    expect(c.key.alg).toBe(alg);
    expect(c.key.kid).toMatch(/^[A-Za-z0-9_-]{8}$/);
    expect(c.issuer).toBe('identity-gateway');
    expect(c.cookieName).toBe('gw_session_asr');
  });
  it('the issuer is the PUBLIC_BASE_URL origin, and the cookie family follows the session cookie name', () => {
    const c = assertionConfig({ ASSERTION_KEY_FILE: keyFile('iss.pem', 'ec'), PUBLIC_BASE_URL: 'https://gw.example.org/' });
    expect(c.issuer).toBe('https://gw.example.org');
    expect(c.cookieName).toBe('__Host-gw_session_asr');
  });
  it('reports every problem at once, naming the variable and never a key', () => {
    const rsa = keyFile('rsa.pem', 'rsa');
    const loaded = loadConfig({ ...BASE, ASSERTION_KEY_FILE: rsa, ASSERTION_PREVIOUS_KEY_FILES: `${keyFile('p384.pem', 'p384')},,/nowhere.pem` });
    expect(loaded.ok).toBe(false);
    const errors = loaded.ok ? [] : loaded.errors;
    expect(errors).toEqual([
      expect.stringMatching(/^ASSERTION_KEY_FILE: must be an EC P-256 \(ES256\) or Ed25519 \(EdDSA\) key \(received a rsa key/),
      expect.stringMatching(/^ASSERTION_PREVIOUS_KEY_FILES: entry 1 must be an EC P-256/),
      expect.stringMatching(/^ASSERTION_PREVIOUS_KEY_FILES: entry 2 is empty/),
      expect.stringMatching(/^ASSERTION_PREVIOUS_KEY_FILES: entry 3 must name a readable file \(received "\/nowhere.pem": ENOENT\)/),
    ]);
    expect(errors.join('\n')).not.toContain('PRIVATE KEY');
  });
  it('refuses previous keys without an active one, and garbage PEM', () => {
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a key');
    const a = loadConfig({ ...BASE, ASSERTION_PREVIOUS_KEY_FILES: keyFile('lonely.pem', 'ec') });
    const b = loadConfig({ ...BASE, ASSERTION_KEY_FILE: garbage });
    expect(a.ok ? [] : a.errors).toEqual([expect.stringMatching(/^ASSERTION_PREVIOUS_KEY_FILES: only applies with ASSERTION_KEY_FILE/)]);
    expect(b.ok ? [] : b.errors).toEqual([expect.stringMatching(/^ASSERTION_KEY_FILE: must hold a PEM private key.*contents masked/)]);
  });
});

describe('signAssertion', () => {
  const active = keyFile('active.pem', 'ec');
  const previousPublic = keyFile('previous.pub.pem', 'ed25519', 'public');
  const config = assertionConfig({ ASSERTION_KEY_FILE: active, ASSERTION_PREVIOUS_KEY_FILES: previousPublic });
  const jwks = createLocalJWKSet(assertionJwks(config));

  it('the JWKS has the active key then the previous one, public parts only', () => {
    const { keys } = assertionJwks(config);
    expect(keys.map((k) => [k.kty, k.alg, k.use, k.kid])).toEqual([
      ['EC', 'ES256', 'sig', config.key.kid],
      ['OKP', 'EdDSA', 'sig', config.previousKeys[0]!.kid],
    ]);
    for (const k of keys) expect(k).not.toHaveProperty('d');
    expect(assertionJwks(null)).toEqual({ keys: [] });
  });

  it("verifies with the JWKS, carries the session's identity, aud = the app, exp = the token's", async () => {
    const { token, claims } = session();
    const jwt = signAssertion(config, token, claims, 'finance', NOW);
    const { payload } = await jwtVerify(jwt, jwks, { issuer: 'identity-gateway', audience: 'finance', currentDate: new Date(NOW_MS) });
    expect(payload).toEqual({
      bind: token.slice(token.lastIndexOf('.') + 1, token.lastIndexOf('.') + 13),
      iss: 'identity-gateway',
      aud: 'finance',
      sub: 'u-1',
      user: 'local:kirk',
      username: 'kirk',
      name: 'James T. Kirk',
      email: 'kirk@example.org',
      groups: ['Federation'],
      src: 'local',
      iat: NOW,
      exp: claims.exp,
    });
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', kid: config.key.kid });
  });

  it("the default app's aud is the issuer; another app's audience is refused", async () => {
    const { token, claims } = session();
    const jwt = signAssertion(config, token, claims, '', NOW);
    await expect(jwtVerify(jwt, jwks, { audience: 'identity-gateway', currentDate: new Date(NOW_MS) })).resolves.toBeDefined();
    await expect(jwtVerify(jwt, jwks, { audience: 'finance', currentDate: new Date(NOW_MS) })).rejects.toThrow(/aud/);
  });

  it('is bound to its token: the payload segment starts with the prefix and the encoded signature prefix', () => {
    const a = session();
    const b = session();
    const one = signAssertion(config, a.token, a.claims, '', NOW).split('.')[1]!;
    const two = signAssertion(config, a.token, a.claims, 'wiki', NOW).split('.')[1]!;
    const other = signAssertion(config, b.token, b.claims, '', NOW).split('.')[1]!;
    expect(one.startsWith(ASSERTION_PAYLOAD_PREFIX)).toBe(true);
    expect(one.slice(0, 28)).toBe(two.slice(0, 28));
    expect(one.slice(0, 28)).not.toBe(other.slice(0, 28));
  });

  it('a user in 1,000 groups: the assertion carries what the token carries (the selected groups, count and digest)', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `group-${i}`);
    const s = issueSessionToken({
      identity: { sub: 'u-2', username: 'spock', groups: many, src: 'local' },
      ip: '203.0.113.7',
      secret: SECRET,
      ttlSeconds: 300,
      now: NOW_MS,
      groupSelection: { policyGroups: new Set<string>(['group-7']), payload: { all: false, exact: [], prefixes: [] } },
    });
    const jwt = signAssertion(config, s.token, s.claims, '', NOW);
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload.groups).toEqual(['group-7']);
    expect(payload.groups_count).toBe(1000);
    expect(payload.groups_digest).toBe(s.claims.groups_digest);
    expect(jwt.length).toBeLessThan(700);
  });

  it('the cookie line: host-only, HttpOnly, SameSite=Lax, Path=/, the app in the name', () => {
    const { token, claims } = session();
    const line = assertionCookieLine(config, token, claims, 'finance', NOW, { secure: true, maxAgeSeconds: 600 });
    expect(line).toMatch(/^gw_session_asr_finance=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; HttpOnly; SameSite=Lax; Path=\/; Max-Age=600; Secure$/);
    expect(line).not.toMatch(/Domain=/i);
  });

  it('an Ed25519 key signs EdDSA assertions that verify', async () => {
    const ed = assertionConfig({ ASSERTION_KEY_FILE: keyFile('ed-active.pem', 'ed25519') });
    const { token, claims } = session();
    const jwt = signAssertion(ed, token, claims, '', NOW);
    await expect(jwtVerify(jwt, createLocalJWKSet(assertionJwks(ed)), { audience: 'identity-gateway', currentDate: new Date(NOW_MS) })).resolves.toBeDefined();
  });
});

describe('clearAssertionCookies (sign-out)', () => {
  it('deletes every assertion cookie the request carries, and nothing else', () => {
    expect(clearAssertionCookies('a=1; gw_session=T; gw_session_asr=A; gw_session_asr_finance=F; gw_session_asrx=X; gw_session_asr_bad name=Y', 'gw_session_asr', false)).toEqual([
      'gw_session_asr=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0',
      'gw_session_asr_finance=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0',
    ]);
    expect(clearAssertionCookies(undefined, 'gw_session_asr', true)).toEqual([]);
  });
});
