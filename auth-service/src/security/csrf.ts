/**
 * Login CSRF protection: a signed double-submit token (OWASP CSRF cheat sheet, "Signed Double-Submit
 * Cookie"). GET /login sets a random cookie and puts HMAC(key, cookie) in the form; POST /login
 * recomputes it. A cross-site page can make the browser send the cookie but cannot read it or the
 * form, so it cannot produce the matching token. The HMAC (rather than a plain copy) means a value
 * planted into the cookie by a sibling subdomain is useless without the key.
 */
import crypto from 'node:crypto';

/** HKDF `info` for the CSRF key; distinct from anything else derived from the JWT secret. */
const CSRF_KEY_INFO = 'identity-gateway csrf v1';

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
const TOKEN_VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface CsrfProtection {
  /** A fresh random cookie value (32 bytes, base64url). */
  newCookieValue(): string;
  /** True when `value` has the shape `newCookieValue` produces (an attacker may send anything). */
  isCookieValue(value: string): boolean;
  /** The form token for a cookie value. */
  tokenFor(cookieValue: string): string;
  /** Constant-time check that `token` belongs to `cookieValue`. False for any malformed input. */
  verify(cookieValue: unknown, token: unknown): boolean;
}

/**
 * Derives the CSRF key from the JWT secret with HKDF-SHA256 (RFC 5869) and a distinct `info`, so
 * no second secret has to be configured and the two keys are independent.
 * Not guaranteed: tokens survive a JWT secret rotation (they are short-lived; the user reloads).
 */
export function createCsrfProtection(jwtSecret: string): CsrfProtection {
  const key = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(jwtSecret, 'utf8'), Buffer.alloc(0), CSRF_KEY_INFO, 32));

  function tokenFor(cookieValue: string): string {
    return crypto.createHmac('sha256', key).update(cookieValue, 'utf8').digest('base64url');
  }

  return {
    newCookieValue: () => crypto.randomBytes(32).toString('base64url'),
    isCookieValue: (value) => COOKIE_VALUE.test(value),
    tokenFor,
    verify(cookieValue, token) {
      if (typeof cookieValue !== 'string' || typeof token !== 'string') return false;
      if (!COOKIE_VALUE.test(cookieValue) || !TOKEN_VALUE.test(token)) return false;
      return crypto.timingSafeEqual(Buffer.from(tokenFor(cookieValue), 'utf8'), Buffer.from(token, 'utf8'));
    },
  };
}
