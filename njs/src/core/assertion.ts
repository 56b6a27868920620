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
 * Binding: every assertion is issued for one session token, and its payload JSON starts with
 * `{"bind":"<the first 12 characters of that token's signature>"` (9 + 12 bytes), so its base64url
 * payload segment starts with ASSERTION_PAYLOAD_PREFIX followed by exactly the 16 characters that
 * encode those 12 (9 bytes encode to 12 characters, 12 to 16: both boundaries fall on base64
 * groups). The gate compares them with its own token's signature: no claim is added to the session
 * token (every byte of it costs on every request), each renewal (a new signature) unbinds the old
 * assertions, and another session's assertion never matches (72 bits of an HMAC it cannot choose).
 * The app sees 72 bits of the session token's MAC, which does not help forge one.
 *
 * This file is shared by the gate and the auth service; njs 0.7.9 subset only.
 */

import { APP_NAME_PATTERN } from './policy-contract.js';

/** The assertion claim that binds it to a session token; always the first member of the payload JSON. */
export const ASSERTION_BINDING_CLAIM = 'bind';

/** Characters of the token's signature that the binding holds. */
export const ASSERTION_BINDING_LENGTH = 12;

/** base64url of `{"bind":"`: how every assertion payload segment begins. */
export const ASSERTION_PAYLOAD_PREFIX = 'eyJiaW5kIjoi';

/** The header nginx sends the upstream (snippets/upstream-headers.conf). */
export const ASSERTION_HEADER = 'X-Gateway-Assertion';

/** What the gate needs to find and check the assertion cookie; GateConfig.assertion when on. */
export interface AssertionGateConfig {
  /** Name of the unnamed app's assertion cookie; a named app's is this + '_' + app (assertionCookieName). */
  cookieName: string;
}

/** A name `set $gate_app NAME;` may give an app: the policy's own rule, APP_NAME_PATTERN. */
export function isAppName(app: string): boolean {
  return new RegExp(APP_NAME_PATTERN).test(app);
}

/**
 * The assertion cookie of `app` ('' for the unnamed app): `base` or `base_app`. Host-only cookies,
 * so apps on other hosts keep cookies of their own. Not checked: the app name (isAppName).
 */
export function assertionCookieName(base: string, app: string): string {
  return app === '' ? base : base + '_' + app;
}

/** The binding of the assertions issued for `token`: the first 12 characters of its signature. */
export function assertionBindingOf(token: string): string {
  const dot = token.lastIndexOf('.');
  return token.substr(dot + 1, ASSERTION_BINDING_LENGTH);
}
