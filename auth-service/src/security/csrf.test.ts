import { randomBytes } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { createCsrfProtection } from './csrf.js';

const secret = randomBytes(48).toString('base64url');
const csrf = createCsrfProtection(secret);
const cookie = csrf.newCookieValue();
const token = csrf.tokenFor(cookie);

describe('signed double-submit CSRF token', () => {
  test('accepts the token made for the cookie', () => {
    expect(csrf.verify(cookie, token)).toBe(true);
  });

  test.each([
    ['the token of another cookie', cookie, csrf.tokenFor(csrf.newCookieValue())],
    ['the cookie value copied into the form (plain double submit)', cookie, cookie],
    ['a token made with another JWT secret', cookie, createCsrfProtection(randomBytes(48).toString('base64url')).tokenFor(cookie)],
    ['a truncated token', cookie, token.slice(0, 42)],
    ['an empty token', cookie, ''],
    ['a token that is not a string (repeated form field)', cookie, [token, token]],
    ['a malformed cookie', 'not a cookie', token],
    ['no cookie', undefined, token],
  ])('refuses %s', (_name, c, t) => {
    expect(csrf.verify(c, t)).toBe(false);
  });

  test('derives its key from the JWT secret with HKDF, so the token is not an HMAC under the JWT secret itself', async () => {
    const { createHmac } = await import('node:crypto');
    expect(token).not.toBe(createHmac('sha256', secret).update(cookie).digest('base64url'));
  });

  test('makes 32-byte random cookie values', () => {
    expect(csrf.isCookieValue(cookie)).toBe(true);
    expect(new Set(Array.from({ length: 100 }, () => csrf.newCookieValue())).size).toBe(100);
  });
});
