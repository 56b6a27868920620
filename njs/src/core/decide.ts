/**
 * The gate's decision for one request, from plain data. The adapter feeds it nginx values and njs
 * crypto; tests feed it fixed values and Node crypto.
 */
import { readCookie } from './cookie.js';
import type { CookieHeaders } from './cookie.js';
import { loginRedirectLocation } from './return-url.js';
import { FORWARDED_CLAIMS } from './session-contract.js';
import type { DenyReason, GateConfig, SessionClaims } from './session-contract.js';
import { verifySessionToken } from './token.js';

export interface DecideInput {
  cookieHeaders: CookieHeaders;
  /** The Accept header, if any. */
  accept: string | undefined;
  /** nginx's raw $request_uri. */
  requestUri: string;
  /** nginx's $remote_addr. */
  remoteAddr: string;
  /** Current time, seconds since the epoch. */
  now: number;
  config: GateConfig;
  hmac: (secret: string, data: string) => string;
  digest: (s: string) => string;
  decode: (b64url: string) => string;
}

export type Decision =
  | {
      action: 'allow';
      claims: SessionClaims;
      /** Values for X-Payload-<claim>, keyed by claim name, only for FORWARDED_CLAIMS present. */
      headers: { [claim: string]: string };
      /** The Cookie header to send upstream: every cookie except the session cookie ('' if none). */
      upstreamCookie: string;
    }
  | { action: 'login'; reason: DenyReason; location: string }
  | { action: 'deny'; reason: DenyReason };

/** Removes every character below 0x20 and DEL, so no claim can split or fold a header. */
export function sanitizeHeaderValue(value: string): string {
  // Built here, not at module level: njs runs module code on every request, and this is the rare path.
  return value.replace(/[\x00-\x1f\x7f]/g, '');
}

function scalarToString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Unsanitised header text of one claim (see claimHeaderValue). */
function claimText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return scalarToString(v);
  let s = '';
  for (let i = 0; i < v.length; i++) {
    const item = scalarToString(v[i]);
    if (item === undefined) continue;
    s = s === '' ? item : s + ',' + item;
  }
  return s;
}

/**
 * The header value for one claim: strings as-is, numbers and booleans stringified, arrays
 * comma-joined (their non-scalar items dropped), objects and null skipped (undefined). Control
 * characters are removed in every case.
 */
export function claimHeaderValue(v: unknown): string | undefined {
  const s = claimText(v);
  return s === undefined ? undefined : sanitizeHeaderValue(s);
}

/**
 * Builds the forwarded identity headers from verified claims (values as claimHeaderValue).
 * `escaped` is the token's flag (see VerifyResult): when false no value can hold a control
 * character, so the per-value sanitising (a regex replace costs a few µs per call in njs) is skipped.
 */
export function forwardedHeaders(claims: SessionClaims, escaped: boolean): { [claim: string]: string } {
  const headers: { [claim: string]: string } = {};
  for (let i = 0; i < FORWARDED_CLAIMS.length; i++) {
    const name = FORWARDED_CLAIMS[i];
    // Claims come from JSON.parse: own data properties only, and no forwarded claim name exists
    // on Object.prototype, so a plain lookup is enough.
    const value = claimText(claims[name]);
    if (value === undefined) continue;
    headers[name] = escaped ? sanitizeHeaderValue(value) : value;
  }
  return headers;
}

function wantsHtml(accept: string | undefined): boolean {
  return typeof accept === 'string' && accept.toLowerCase().indexOf('text/html') >= 0;
}

/**
 * Decides one request.
 *
 * - A single, valid session cookie: `allow`, with the forwarded headers and the Cookie header
 *   minus the session cookie.
 * - Otherwise (missing, duplicate, forged, expired, IP mismatch, ...): `login` with the login
 *   Location when the client accepts text/html (a browser navigation), else `deny`. The reason is
 *   returned either way; telling forged from expired in the logs is the adapter's job.
 *
 * Not decided here: authorization (which users may reach which upstream), and whether the
 * request is a navigation at all (Accept is a hint; an API client sending text/html gets a 302).
 */
export function decideRequest(input: DecideInput): Decision {
  const config = input.config;
  const cookie = readCookie(input.cookieHeaders, config.cookieName);
  let reason: DenyReason;
  if (cookie.status === 'ok') {
    const verified = verifySessionToken(cookie.value, {
      keys: config.keys,
      now: input.now,
      leewaySeconds: config.leewaySeconds,
      remoteAddr: input.remoteAddr,
      ipBinding: config.ipBinding,
      hmac: input.hmac,
      digest: input.digest,
      decode: input.decode,
    });
    if (verified.ok) {
      return {
        action: 'allow',
        claims: verified.claims,
        headers: forwardedHeaders(verified.claims, verified.escaped),
        upstreamCookie: cookie.rest,
      };
    }
    reason = verified.reason;
  } else {
    reason = cookie.status === 'duplicate' ? 'token-duplicate' : 'token-missing';
  }
  if (wantsHtml(input.accept)) {
    return { action: 'login', reason: reason, location: loginRedirectLocation(config.loginPath, input.requestUri) };
  }
  return { action: 'deny', reason: reason };
}
