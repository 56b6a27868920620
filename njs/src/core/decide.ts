/**
 * The gate's decision for one request, from plain data. The adapter feeds it nginx values and njs
 * crypto; tests feed it fixed values and Node crypto.
 */
import { readCookie } from './cookie.js';
import type { CookieHeaders } from './cookie.js';
import { loginRedirectLocation } from './return-url.js';
import { FORWARDED_CLAIMS } from './session-contract.js';
import type { AllowReason, DenyReason, GateConfig, SessionClaims } from './session-contract.js';
import { decideAccessFor, isPolicyOff, methodRulesCover } from './policy.js';
import type { CompiledPolicy, GatePolicy } from './policy-contract.js';
import { hasMethodOverrideParam, isPathTooLong, policyPath } from './request-path.js';
import { verifySessionToken } from './token.js';

export interface DecideInput {
  cookieHeaders: CookieHeaders;
  /** The Accept header, if any. */
  accept: string | undefined;
  /** nginx's raw $request_uri (for the login return URL and the path fast path). */
  requestUri: string;
  /** nginx's normalised $uri (what the access policy matches). */
  uri: string;
  /** HTTP method ($request_method). */
  method: string;
  /** nginx's $remote_addr. */
  remoteAddr: string;
  /** Current time, seconds since the epoch. */
  now: number;
  config: GateConfig;
  /** The preloaded access policy; `{ off: true }` when none is configured. */
  policy: GatePolicy;
  hmac: (secret: string, data: string) => string;
  digest: (s: string) => string;
  decode: (b64url: string) => string;
  /** Turns a non-ASCII $uri into text (see policyPath); omitted when `uri` is already text. */
  utf8?: (bytes: string) => string;
}

export type Decision =
  | {
      action: 'allow';
      /** Verified claims, or null for an anonymous request a public rule let through. */
      claims: SessionClaims | null;
      /** 'session-valid', or 'public' for an anonymous request a public rule let through. */
      reason: AllowReason;
      /** Values for X-Payload-<claim>, keyed by claim name, only for FORWARDED_CLAIMS present. */
      headers: { [claim: string]: string };
      /** The Cookie header to send upstream: every cookie except the session cookie ('' if none). */
      upstreamCookie: string;
      /** The policy rule that allowed it, 'default', or '' when no policy is configured. */
      rule: string;
      /**
       * Public allow only: why a session cookie that was sent did not count (e.g. 'token-invalid'),
       * so that a forgery is still logged though the request passes anonymously.
       */
      sessionProblem?: DenyReason;
    }
  | { action: 'login'; reason: DenyReason; location: string; rule: string }
  | { action: 'deny'; reason: DenyReason; rule: string }
  /** The policy refused: 403 (a signed-in user, or a public deny rule). `claims` null if anonymous. */
  | { action: 'forbidden'; reason: 'policy-denied'; rule: string; claims: SessionClaims | null }
  /**
   * 400, before any session is looked at: the path is ambiguous or too long (see request-path.ts), or
   * the query overrides the method (`_method`) where a rule depends on the method.
   */
  | { action: 'bad-request'; reason: 'path-ambiguous' | 'path-too-long' | 'method-override'; rule: string };

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

/** Every cookie of the request, joined as one Cookie header (no session cookie is among them). */
function joinCookies(cookieHeaders: CookieHeaders): string {
  if (cookieHeaders === undefined || cookieHeaders === null) return '';
  if (typeof cookieHeaders === 'string') return cookieHeaders;
  return cookieHeaders.join('; ');
}

/**
 * Decides one request.
 *
 * Without a policy (`policy.off`):
 * - a single, valid session cookie: `allow`, with the forwarded headers and the Cookie header
 *   minus the session cookie;
 * - otherwise (missing, duplicate, forged, expired, IP mismatch, ...): `login` with the login
 *   Location when the client accepts text/html (a browser navigation), else `deny`. The reason is
 *   returned either way; telling forged from expired in the logs is the adapter's job.
 *
 * With a policy, first the path: a path longer than MAX_POLICY_PATH_LENGTH, an ambiguous one
 * (request-path.ts), or a `_method` query parameter on a path where a rule names `methods` is
 * `bad-request`. Then the session as above, then the policy (policy.ts) on the path, method, claims,
 * address and time:
 * - valid session: the policy's allow is `allow`, its deny is `forbidden` (403, not a login);
 * - no valid session: a `public` allow is `allow` without identity (reason 'public', no headers,
 *   cookies minus any session cookie), a `public` deny is `forbidden`, anything else needs a session
 *   (`login`/`deny` as above, whatever the rule said: `default` never exempts from logging in).
 * `rule` names the deciding rule ('default' when none matched) for the access log; it is '' on
 * `login`/`deny`, where the missing session decided, not the rule that matched the path.
 *
 * Not decided here: whether the request is a navigation at all (Accept is a hint; an API client
 * sending text/html gets a 302).
 */
export function decideRequest(input: DecideInput): Decision {
  const config = input.config;
  const policy = input.policy;
  const off = isPolicyOff(policy);
  let path = '';
  if (!off) {
    if (isPathTooLong(input.uri)) return { action: 'bad-request', reason: 'path-too-long', rule: '' };
    const p = policyPath(input.uri, input.requestUri, input.utf8);
    if (p === null) return { action: 'bad-request', reason: 'path-ambiguous', rule: '' };
    path = p;
    if (hasMethodOverrideParam(input.requestUri) && methodRulesCover(policy as CompiledPolicy, path)) {
      return { action: 'bad-request', reason: 'method-override', rule: '' };
    }
  }
  const cookie = readCookie(input.cookieHeaders, config.cookieName);
  let reason: DenyReason;
  let claims: SessionClaims | null = null;
  let escaped = false;
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
      claims = verified.claims;
      escaped = verified.escaped;
    }
    reason = verified.ok ? 'token-missing' : verified.reason;
  } else {
    reason = cookie.status === 'duplicate' ? 'token-duplicate' : 'token-missing';
  }

  let rule = '';
  if (!off) {
    const access = decideAccessFor(policy as CompiledPolicy, input.method, path, claims, input.remoteAddr, input.now);
    rule = access.rule;
    if (access.decision === 'deny' && (claims !== null || access.public)) {
      return { action: 'forbidden', reason: 'policy-denied', rule: rule, claims: claims };
    }
    if (claims === null && access.public) {
      const upstreamCookie = cookie.status === 'ok' ? cookie.rest : cookie.status === 'missing' ? joinCookies(input.cookieHeaders) : '';
      return {
        action: 'allow',
        claims: null,
        reason: 'public',
        headers: {},
        upstreamCookie: upstreamCookie,
        rule: rule,
        sessionProblem: cookie.status === 'missing' ? undefined : reason,
      };
    }
  }

  if (claims !== null && cookie.status === 'ok') {
    return {
      action: 'allow',
      claims: claims,
      reason: 'session-valid',
      headers: forwardedHeaders(claims, escaped),
      upstreamCookie: cookie.rest,
      rule: rule,
    };
  }
  if (wantsHtml(input.accept)) {
    return { action: 'login', reason: reason, location: loginRedirectLocation(config.loginPath, input.requestUri), rule: '' };
  }
  return { action: 'deny', reason: reason, rule: '' };
}
