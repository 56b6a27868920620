/**
 * The signed identity assertion (issue 12): a JWT (ES256 or EdDSA, signed by the auth service with
 * ASSERTION_KEY_FILE) that nginx forwards to the upstream as `X-Gateway-Assertion`, so an app can
 * verify who the user is without trusting the network (like Pomerium's X-Pomerium-Jwt-Assertion).
 *
 * njs 0.7.9 cannot sign in js_set (subtle is async), and a signature carried inside the session
 * token makes the gate parse, MAC and decode every extra byte on every request. So the assertion
 * travels in a cookie of its own, one per app (assertionCookieName), and the gate never decodes it:
 * it checks that the cookie is *bound* to the session with one substring comparison.
 *
 * Binding: every session token the auth service signs with assertions on carries ASSERTION_BINDING_CLAIM
 * (`asr`), 16 base64url characters, the encoding of a random 12-character nonce. Every assertion
 * issued for that token starts its payload JSON with `{"bind":"<nonce>"` (9 + 12 bytes), so the
 * base64url payload segment of each of them starts with ASSERTION_PAYLOAD_PREFIX followed by exactly
 * those 16 characters (9 bytes encode to 12 characters, 12 bytes to 16: both boundaries fall on
 * base64 groups). One short claim in the HMAC'd token binds the assertions of every app.
 *
 * This file is shared by the gate and the auth service; njs 0.7.9 subset only.
 */

/** The session-token claim that binds assertions to the token (see above). Never forwarded. */
export const ASSERTION_BINDING_CLAIM = 'asr';

/** The assertion claim that holds the nonce; always the first member of the payload JSON. */
export const ASSERTION_NONCE_CLAIM = 'bind';

/** Characters of the nonce (base64url alphabet, 9 random bytes). */
export const ASSERTION_NONCE_LENGTH = 12;

/** base64url of `{"bind":"`: how every assertion payload segment begins. */
export const ASSERTION_PAYLOAD_PREFIX = 'eyJiaW5kIjoi';

/** The header nginx sends the upstream (snippets/upstream-headers.conf). */
export const ASSERTION_HEADER = 'X-Gateway-Assertion';

/** What the gate needs to find and check the assertion cookie; GateConfig.assertion when on. */
export interface AssertionGateConfig {
  /** Name of the unnamed app's assertion cookie; a named app's is this + '_' + app (assertionCookieName). */
  cookieName: string;
}

/** A name `set $gate_app NAME;` may give an app: letters, digits, '_' and '-', 1 to 64 of them. */
export function isAppName(app: string): boolean {
  return app.length > 0 && app.length <= 64 && /^[A-Za-z0-9_-]+$/.test(app);
}

/**
 * The assertion cookie of `app` ('' for the unnamed app): `base` or `base_app`. Host-only cookies,
 * so apps on other hosts keep cookies of their own. Not checked: the app name (isAppName).
 */
export function assertionCookieName(base: string, app: string): string {
  return app === '' ? base : base + '_' + app;
}

/**
 * True when `assertion` (a cookie value) is bound to a session token whose `asr` claim is `binding`:
 * its payload segment starts with ASSERTION_PAYLOAD_PREFIX + binding. A binding that is not a
 * 16-character string binds nothing.
 * Not checked: the signature, the claims, the expiry (the gate never decodes the assertion; the
 * auth service only writes what it signed, and the app verifies it). A value that is not a JWT but
 * contains the right characters passes, and the app then refuses it: the gate's check is only that
 * nobody can pair another session's assertion with this session.
 */
export function isBoundAssertion(assertion: string, binding: unknown): boolean {
  if (typeof binding !== 'string' || binding.length !== 16) return false;
  const dot = assertion.indexOf('.');
  return dot > 0 && assertion.substr(dot + 1, 28) === ASSERTION_PAYLOAD_PREFIX + binding;
}
