import { randomBytes } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { describeWeakSecret, estimateEntropyBits } from './secret-strength.js';

describe('describeWeakSecret', () => {
  test.each([
    ['`openssl rand -base64 48`', () => randomBytes(48).toString('base64')],
    ['`openssl rand -hex 32`', () => randomBytes(32).toString('hex')],
    ['24 random bytes in base64url (exactly 32 characters)', () => randomBytes(24).toString('base64url')],
  ])('accepts generated secrets: %s (2,000 samples, no false refusals)', (_name, generate) => {
    for (let i = 0; i < 2000; i++) {
      const secret = generate();
      expect([secret, describeWeakSecret(secret)]).toEqual([secret, null]);
    }
  });

  test('refuses every `openssl rand -hex 16` (32 hex digits, 16 random bytes), not just unlucky ones', () => {
    for (let i = 0; i < 500; i++) expect(describeWeakSecret(randomBytes(16).toString('hex'))).toMatch(/at least 64 hex digits/);
  });

  test('refuses a long hex string with little entropy', () => {
    expect(describeWeakSecret(`${'0'.repeat(60)}1a2b`)).toMatch(/must carry at least 128 bits of entropy/);
  });

  test('counts bytes, not characters (multi-byte UTF-8)', () => {
    const reason = describeWeakSecret('é'.repeat(15));
    expect(reason).toMatch(/received 30 bytes/);
  });

  test('never puts the secret into the reason', () => {
    for (const secret of ['short', 'x'.repeat(40), 'password-password-password-password-1', '0123456789abcdef0123456789abcdef']) {
      expect(describeWeakSecret(secret)).not.toContain(secret);
    }
  });
});

describe('estimateEntropyBits', () => {
  test.each([
    ['empty', '', 0],
    ['one repeated character', 'aaaa', 0],
    ['two equally frequent characters', 'abab', 4 + 1 / (2 * Math.LN2)],
  ])('%s', (_name, s, bits) => {
    expect(estimateEntropyBits(s)).toBeCloseTo(bits, 6);
  });
});
