import { describe, expect, it } from '@jest/globals';
import { hasCanonicalSha256Shape, isStrictBase64url } from './base64url.js';

describe('isStrictBase64url', () => {
  const cases: Array<[string, string, boolean]> = [
    ['accepts the whole alphabet', 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', true],
    ['accepts length % 4 === 2', 'eyJh', true],
    ['accepts length % 4 === 3', 'eyJhYQ', true],
    ['refuses the empty string', '', false],
    ["refuses '=' padding", 'eyJhYQ==', false],
    ["refuses standard base64 '+' and '/'", 'ab+/', false],
    ['refuses whitespace Buffer would skip', 'eyJh YQ', false],
    ['refuses a dot', 'ey.J', false],
    ['refuses length % 4 === 1 (no valid encoding has it)', 'eyJhY', false],
    ['refuses non-ASCII', 'eyJhé', false],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(isStrictBase64url(input)).toBe(expected);
  });
});

describe('hasCanonicalSha256Shape', () => {
  const mac = Buffer.alloc(32, 7).toString('base64url');
  const cases: Array<[string, string, boolean]> = [
    ['accepts a real 32-byte MAC encoding', mac, true],
    ['refuses 42 characters', mac.slice(1), false],
    ['refuses 44 characters (padding)', mac + '=', false],
    ['refuses a last character with non-zero unused bits', mac.slice(0, 42) + 'B', false],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(hasCanonicalSha256Shape(input)).toBe(expected);
  });

  it('allows exactly the 16 last characters whose 2 low bits are zero', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const allowed = alphabet.split('').filter((c) => hasCanonicalSha256Shape(mac.slice(0, 42) + c));
    expect(allowed).toEqual(alphabet.split('').filter((_c, i) => i % 4 === 0));
  });
});
