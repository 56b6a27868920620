import crypto from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import jwt from 'jsonwebtoken';
import { headerSegmentFor } from './session-token.js';
import {
  deriveTableauKey,
  openTableauCredentials,
  sealTableauCredentials,
  tableauGateKeys,
  verifySessionCookie,
  type TableauCredentials,
} from './tableau-token.js';

const active = crypto.randomBytes(48).toString('base64url');
const previous = crypto.randomBytes(48).toString('base64url');
const other = crypto.randomBytes(48).toString('base64url');
const creds: TableauCredentials = { token: 'abc123|def456', siteId: 'site-1', userId: 'user-1', apiVersion: '3.19', expiresAt: 1_900_000_000 };

/** Flips one bit of the decoded sealed value at `index` (negative: from the end). */
function flipBit(sealed: string, index: number): string {
  const raw = Buffer.from(sealed, 'base64url');
  raw[index < 0 ? raw.length + index : index]! ^= 1;
  return raw.toString('base64url');
}

describe('sealed Tableau credentials', () => {
  test('round-trip under the active secret, and never contain the token in clear', () => {
    const sealed = sealTableauCredentials(creds, active);
    expect(openTableauCredentials(sealed, [active])).toEqual(creds);
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain('abc123');
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('use a fresh IV every time (two seals of the same credentials differ)', () => {
    expect(sealTableauCredentials(creds, active)).not.toBe(sealTableauCredentials(creds, active));
  });

  test('still open after a rotation, with the old secret among the previous ones', () => {
    expect(openTableauCredentials(sealTableauCredentials(creds, previous), [active, previous])).toEqual(creds);
  });

  const sealed = sealTableauCredentials(creds, active);
  test.each([
    ['a key derived from another secret', sealed, [other]],
    ['a flipped bit in the IV', flipBit(sealed, 0), [active]],
    ['a flipped bit in the ciphertext', flipBit(sealed, 14), [active]],
    ['a flipped bit in the GCM tag', flipBit(sealed, -1), [active]],
    ['a truncated value (no tag)', Buffer.from(sealed, 'base64url').subarray(0, 20).toString('base64url'), [active]],
    ['characters outside base64url', sealed + '!', [active]],
    ['not a string', 42, [active]],
  ])('refuses %s', (_name, value, secrets) => {
    expect(openTableauCredentials(value, secrets as string[])).toBeNull();
  });

  test('the gate keys are the HKDF keys by header segment, for the active and previous secrets', () => {
    expect(tableauGateKeys([active, previous])).toEqual({
      [headerSegmentFor(active)]: deriveTableauKey(active).toString('base64url'),
      [headerSegmentFor(previous)]: deriveTableauKey(previous).toString('base64url'),
    });
    expect(deriveTableauKey(active)).toHaveLength(32);
    // Not the HMAC secret itself, nor a plain hash of it.
    expect(deriveTableauKey(active).equals(crypto.createHash('sha256').update(active).digest())).toBe(false);
  });

  test('a gate-style AES-GCM decryption with the raw gate key opens the sealed value (what njs does)', () => {
    const key = Buffer.from(tableauGateKeys([active])[headerSegmentFor(active)]!, 'base64url');
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
    expect(JSON.parse(plain)).toEqual({ t: creds.token, s: 'site-1', u: 'user-1', v: '3.19', x: 1_900_000_000 });
  });
});

describe('verifySessionCookie', () => {
  const NOW = 1_800_000_000;
  const sign = (claims: object, secret = active, alg: jwt.Algorithm = 'HS256') =>
    jwt.sign({ sub: 's', username: 'u', ip: '10.0.0.1', iat: NOW - 10, exp: NOW + 600, ...claims }, crypto.createSecretKey(Buffer.from(secret, 'utf8')), { algorithm: alg });
  const check = { secrets: [active, previous], leewaySeconds: 30, ipBinding: 'exact' as const, clientIp: '10.0.0.1', now: NOW };

  test('accepts a token signed with the active or a previous secret', () => {
    expect(verifySessionCookie(sign({}), check)).toMatchObject({ username: 'u' });
    expect(verifySessionCookie(sign({}, previous), check)).toMatchObject({ username: 'u' });
  });

  test.each([
    ['no token', undefined],
    ['a token signed with another key', sign({}, other)],
    ['HS512 (only HS256 is accepted)', sign({}, active, 'HS512')],
    ['an expired token (past the leeway)', sign({ exp: NOW - 31 })],
    ['a token bound to another address', sign({ ip: '10.0.0.2' })],
    ['a token without username', sign({ username: undefined })],
  ])('refuses %s', (_name, token) => {
    expect(verifySessionCookie(token, check)).toBeNull();
  });

  test('ignores the address when IP binding is off', () => {
    expect(verifySessionCookie(sign({ ip: '10.0.0.2' }), { ...check, ipBinding: 'off' })).not.toBeNull();
  });

  test('with maxSessionSeconds, refuses a token older than the maximum (plus leeway), without iat, or issued in the future, as the gate does', () => {
    const aged = { ...check, maxSessionSeconds: 3600 };
    expect(verifySessionCookie(sign({ iat: NOW - 3600 - 30 }), aged)).not.toBeNull();
    expect(verifySessionCookie(sign({ iat: NOW - 3600 - 31 }), aged)).toBeNull();
    expect(verifySessionCookie(sign({ iat: NOW + 31 }), aged)).toBeNull();
    expect(verifySessionCookie(jwt.sign({ sub: 's', username: 'u', ip: '10.0.0.1', exp: NOW + 600 }, crypto.createSecretKey(Buffer.from(active, 'utf8')), { algorithm: 'HS256', noTimestamp: true }), aged)).toBeNull();
  });

  test('subnet binding accepts the same /24 and refuses the next one, as the gate does', () => {
    expect(verifySessionCookie(sign({ ip: '10.0.0.2' }), { ...check, ipBinding: 'subnet' })).not.toBeNull();
    expect(verifySessionCookie(sign({ ip: '10.0.1.1' }), { ...check, ipBinding: 'subnet' })).toBeNull();
    expect(verifySessionCookie(sign({ ip: undefined }), { ...check, ipBinding: 'subnet' })).toBeNull();
  });
});
