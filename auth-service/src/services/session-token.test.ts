import crypto from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { sessionJwtHeader } from '../../../njs/src/core/session-contract.js';
import { verifySessionToken } from '../../../njs/src/core/token.js';
import type { Identity } from '../authenticators/types.js';
import { NO_PAYLOAD_GROUPS } from './group-selection.js';
import { deriveKeyId, headerSegmentFor, issueSessionToken } from './session-token.js';

const NOW_MS = 1_750_000_000_123;
const NOW_S = 1_750_000_000;
const asciiSecret = crypto.randomBytes(48).toString('base64url');
// Non-ASCII characters prove the HMAC key is the secret's UTF-8 bytes, as in njs.
const unicodeSecret = `${crypto.randomBytes(24).toString('base64url')}ÄÖÜßéèçñ€`;

const identity: Identity = {
  sub: '7f1e2d3c-0000-4000-8000-000000000001',
  username: 'alice',
  name: 'Alice Liddell',
  email: 'alice@example.test',
  groups: ['staff'],
  src: 'local',
};

function issue(secret: string, overrides: Partial<Identity> = {}) {
  return issueSessionToken({ identity: { ...identity, ...overrides }, ip: '192.0.2.10', secret, ttlSeconds: 3600, now: NOW_MS, groupSelection: { policyGroups: new Set(['staff']), payload: NO_PAYLOAD_GROUPS } });
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe.each([
  ['an ASCII secret', asciiSecret],
  ['a secret with non-ASCII characters', unicodeSecret],
])('issueSessionToken with %s', (_name, secret) => {
  test('emits exactly base64url(JSON.stringify(sessionJwtHeader(kid))) as the header segment', () => {
    const { token } = issue(secret);
    const expected = Buffer.from(JSON.stringify(sessionJwtHeader(deriveKeyId(secret)))).toString('base64url');
    expect(token.split('.')[0]).toBe(expected);
    expect(headerSegmentFor(secret)).toBe(expected);
    expect(JSON.parse(Buffer.from(expected, 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT', kid: deriveKeyId(secret) });
  });

  test('derives kid as the first 12 characters of base64url(sha256("gw-kid:" + secret))', () => {
    const expected = crypto.createHash('sha256').update(Buffer.from(`gw-kid:${secret}`, 'utf8')).digest('base64url').slice(0, 12);
    expect(deriveKeyId(secret)).toBe(expected);
    expect(deriveKeyId(secret)).toHaveLength(12);
  });

  test('signs with HMAC-SHA256 keyed by the UTF-8 bytes of the secret', () => {
    const { token } = issue(secret);
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(s).toBe(crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${h}.${p}`).digest('base64url'));
  });

  test('is accepted by the njs gate verifier with the same key table', () => {
    const { token } = issue(secret);
    const result = verifySessionToken(token, {
      config: { keys: { [headerSegmentFor(secret)]: secret }, keyRetiredAt: {}, leewaySeconds: 0, maxSessionSeconds: 3600, ipBinding: 'exact' },
      now: NOW_S + 10,
      remoteAddr: '192.0.2.10',
      hmac: (k, data) => crypto.createHmac('sha256', k).update(data).digest('base64url'),
      digest: (s) => crypto.createHash('sha256').update(s).digest('hex'),
      decode: (b) => Buffer.from(b, 'base64url').toString('utf8'),
    });
    expect(result).toMatchObject({ ok: true, claims: { sub: identity.sub, username: 'alice' } });
  });
});

describe('session claims', () => {
  test('carry the identity, the client address, a random sid, iat from the clock and exp = iat + ttl', () => {
    const { token, claims } = issue(asciiSecret);
    expect(claims).toEqual({
      sub: identity.sub,
      username: 'alice',
      name: 'Alice Liddell',
      email: 'alice@example.test',
      email_verified: false,
      groups: ['staff'],
      src: 'local',
      ip: '192.0.2.10',
      sid: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      iat: NOW_S,
      exp: NOW_S + 3600,
    });
    expect(payloadOf(token)).toEqual(claims);
  });

  test('omit name and email when the identity has none', () => {
    const claims = payloadOf(issue(asciiSecret, { name: undefined, email: undefined }).token);
    expect(Object.keys(claims).sort()).toEqual(['exp', 'groups', 'iat', 'ip', 'sid', 'src', 'sub', 'username']);
  });

  test('add extra claims from the source but never let them replace a reserved claim', () => {
    const claims = payloadOf(
      issue(asciiSecret, { extraClaims: { tenant: 'acme', ip: '0.0.0.0', exp: 9999999999, sub: 'root', groups: ['admins'] } }).token,
    );
    expect(claims).toMatchObject({ tenant: 'acme', ip: '192.0.2.10', exp: NOW_S + 3600, sub: identity.sub, groups: ['staff'] });
  });
});
