/**
 * The gate's decision for one request, from plain data. The adapter feeds it nginx values and njs
 * crypto; tests feed it fixed values and Node crypto.
 */
import { readCookies, removeCookie } from './cookie.js';
import type { CookieHeaders } from './cookie.js';
import { loginRedirectLocation } from './return-url.js';
import { isJsonArray } from './session-contract.js';
import type { AllowReason, DenyReason, GateConfig, SessionClaims } from './session-contract.js';
import { appSection, decideAccessFor, isPolicyOff, methodRulesCover } from './policy.js';
import type { CompiledPolicy, GatePolicy } from './policy-contract.js';
import { hasMethodOverrideParam, isPathTooLong, policyPath } from './request-path.js';
import { verifySessionToken } from './token.js';
import { ASSERTION_BINDING_LENGTH, ASSERTION_PAYLOAD_PREFIX } from './assertion.js';

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
  /** nginx's $gate_app: the app the location names (`set $gate_app NAME;`); '' or absent: the default app. */
  app?: string;
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
      /** The Cookie header to send upstream: every cookie except the session and assertion cookies ('' if none). */
      upstreamCookie: string;
      /** With config.assertion, on a session allow: the app's bound assertion, for X-Gateway-Assertion. */
      assertion?: string;
      /** The policy rule that allowed it, 'default', or '' when no policy is configured. */
      rule: string;
      /**
       * Public allow only: why a session cookie that was sent did not count (e.g. 'token-invalid'),
       * so that a forgery is still logged though the request passes anonymously.
       */
      sessionProblem?: DenyReason;
    }
  | { action: 'login'; reason: DenyReason; location: string; rule: string }
  /**
   * The session token expired but is otherwise valid (signature, live key, maximum age, address):
   * nginx asks the auth service to renew it (snippets/protect.conf, @gate_renew). `location` is the
   * login URL for a browser, used if the renewal is refused; '' for other clients.
   */
  | { action: 'renew'; reason: 'token-expired' | 'assertion-missing'; location: string; rule: string; /** The expired token's signature: names its renewal in nginx's cache. */ renewKey: string }
  | { action: 'deny'; reason: DenyReason; rule: string }
  /** The policy refused: 403 (a signed-in user, or a public deny rule). `claims` null if anonymous. */
  | { action: 'forbidden'; reason: 'policy-denied'; rule: string; claims: SessionClaims | null }
  /** The location names an app the policy does not know (or no policy is configured): 403, logged as an error. */
  | { action: 'forbidden'; reason: 'app-unknown'; rule: string; claims: null; app: string }
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

/** encodeURI for text with a lone surrogate (which encodeURI refuses): it becomes U+FFFD. */
function encodeUriWellFormed(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff;
    if (pair) {
      out += encodeURI(text.slice(i, i + 2));
      i++;
    } else out += c >= 0xd800 && c <= 0xdfff ? '%EF%BF%BD' : encodeURI(text.charAt(i));
  }
  return out;
}

/** encodeURI with spaces kept (readable names; decodeURIComponent does not care) and, when asked, ','. */
function encodeUriKeepingSpaces(text: string): string {
  let e: string;
  try {
    e = encodeURI(text);
  } catch (x) {
    e = encodeUriWellFormed(text);
  }
  // Every '%' of encodeURI's output starts a %XX triplet, so '%20' can only be an encoded space.
  // split/join, not replace(/%20/g): measured 12x cheaper in njs 0.7.9 on a 250-name list.
  return e.indexOf('%20') < 0 ? e : e.split('%20').join(' ');
}

/**
 * One list item as it appears in a list header (X-Payload-groups): the name percent-encoded as
 * UTF-8 like `encodeURI` (so `%`, control characters, non-ASCII and `"<>[\]^\`{|}` are encoded),
 * except that spaces stay spaces, plus `,` as `%2C`: `Sales,Federation` → `Sales%2CFederation`,
 * `Zoë` → `Zo%C3%AB`, `100%` → `100%25`. No item can split the list or a header line, and
 * `decodeURIComponent` gives the exact name back (a lone surrogate, which has no UTF-8 form,
 * comes back as U+FFFD).
 */
export function encodeListItem(item: string): string {
  const e = encodeUriKeepingSpaces(item);
  return e.indexOf(',') < 0 ? e : e.split(',').join('%2C');
}

/**
 * Header text of a list claim: items as encodeListItem, comma-joined; non-scalar items dropped.
 * Costs (njs/test/bench-in-njs.ts, 250 groups): names encodeURI leaves alone (ASCII letters,
 * digits, spaces, `-_.!~*'();/?:@&=+$#`) are joined as they are after one search; otherwise, when
 * no name holds a comma, one encodeURI over the joined list (its commas are kept) does every item
 * at once; names with commas are encoded one by one. The regexes are built per call, not at
 * module level: njs runs module code on every request.
 */
function listText(v: unknown[]): string {
  // Collected and joined once: `s + ',' + item` copies the growing text each time (quadratic; with
  // 250 groups that was 1.7 MB and ~8 ms per request in njs).
  const items: string[] = [];
  let commas = false;
  for (let i = 0; i < v.length; i++) {
    const item = scalarToString(v[i]);
    if (item === undefined) continue;
    if (!commas && item.indexOf(',') >= 0) commas = true;
    items.push(item);
  }
  if (!commas) {
    const s = items.join(',');
    return s.search(/[^A-Za-z0-9 ,;/?:@&=+$_.!~*'()#-]/) < 0 ? s : encodeUriKeepingSpaces(s);
  }
  for (let i = 0; i < items.length; i++) items[i] = encodeListItem(items[i]);
  return items.join(',');
}

/** Header text of one claim (see claimHeaderValue); only scalars still need sanitising. */
function claimText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (!isJsonArray(v)) return scalarToString(v);
  return listText(v);
}

/**
 * The header value for one claim: strings as-is, numbers and booleans stringified, arrays as a
 * comma-separated list of encoded items (encodeListItem; their non-scalar items dropped), objects
 * and null skipped (undefined). Control characters are removed from scalars (list items have them
 * encoded), so no value can split a header line.
 */
export function claimHeaderValue(v: unknown): string | undefined {
  const s = claimText(v);
  return s === undefined ? undefined : sanitizeHeaderValue(s);
}

/**
 * Builds the forwarded identity headers from verified claims (values as claimHeaderValue).
 * X-Payload-user, the source-qualified id, is not among them: nginx derives it from `src`, `sub` and
 * `username` (a map in nginx/gate.conf), which saves a variable write per request.
 * `escaped` is the token's flag (see VerifyResult): when false no value can hold a control
 * character, so the per-value sanitising (a regex replace costs a few µs per call in njs) is skipped.
 */
export function forwardedHeaders(claims: SessionClaims, escaped: boolean): { [claim: string]: string } {
  const headers: { [claim: string]: string } = {};
  // One line per FORWARDED_CLAIMS entry, in its order, rather than a loop over it: njs builds every
  // module-level array again for each request (~190 CPU instructions per element). A unit test
  // keeps this list and FORWARDED_CLAIMS in step.
  forward(headers, 'sub', claims.sub, escaped);
  forward(headers, 'username', claims.username, escaped);
  forward(headers, 'name', claims.name, escaped);
  forward(headers, 'email', claims.email, escaped);
  forward(headers, 'groups', claims.groups, escaped);
  forward(headers, 'groups_count', claims.groups_count, escaped);
  forward(headers, 'groups_digest', claims.groups_digest, escaped);
  forward(headers, 'src', claims.src, escaped);
  forward(headers, 'sid', claims.sid, escaped);
  forward(headers, 'tableau_site_id', claims.tableau_site_id, escaped);
  forward(headers, 'tableau_user_id', claims.tableau_user_id, escaped);
  forward(headers, 'tableau_site_role', claims.tableau_site_role, escaped);
  return headers;
}

/** Sets headers[name] to the header text of a claim, when it has one. */
function forward(headers: { [claim: string]: string }, name: string, claim: unknown, escaped: boolean): void {
  // Claims come from JSON.parse: own data properties only, and no forwarded claim name exists on
  // Object.prototype, so the caller's plain lookups are enough.
  const value = claimText(claim);
  if (value !== undefined) headers[name] = escaped ? sanitizeHeaderValue(value) : value;
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
 * - an expired token that is otherwise valid: `renew` (nginx renews the session with the auth
 *   service and decides again on the new token, see adapter.ts `resume`);
 * - otherwise (missing, duplicate, forged, too old, IP mismatch, ...): `login` with the login
 *   Location when the client accepts text/html (a browser navigation), else `deny`. The reason is
 *   returned either way; telling forged from expired in the logs is the adapter's job.
 *
 * With a policy, first the path: a path longer than MAX_POLICY_PATH_LENGTH, an ambiguous one
 * (request-path.ts), or a `_method` query parameter on a path where a rule names `methods` is
 * `bad-request`. Then the session as above, then the policy (policy.ts) on the path, method, claims,
 * address and time:
 * - valid session: the policy's allow is `allow`, its deny is `forbidden` (403, not a login);
 * - no valid session: a `public` allow is `allow` without identity (reason 'public', no headers,
 *   cookies minus any session cookie; an expired session is not renewed for a public path), a
 *   `public` deny is `forbidden`, anything else needs a session (`renew`/`login`/`deny` as above, whatever the rule said: `default` never exempts from logging in).
 * `rule` names the deciding rule ('default' when none matched) for the access log; it is '' on
 * `login`/`deny`, where the missing session decided, not the rule that matched the path.
 *
 * Apps: a request of a named app (`input.app`, nginx's $gate_app) is decided by that app's section of
 * the policy (policy.ts appSection) as above; an app the policy has no section for, or any named app
 * without a policy, is `forbidden` with reason `app-unknown` before anything else is looked at.
 *
 * Not decided here: whether the request is a navigation at all (Accept is a hint; an API client
 * sending text/html gets a 302).
 */
export function decideRequest(input: DecideInput): Decision {
  const config = input.config;
  let policy = input.policy;
  const off = isPolicyOff(policy);
  const app = input.app;
  if (app !== undefined && app !== '') {
    const section = off ? null : appSection(policy as CompiledPolicy, app);
    if (section === null) return { action: 'forbidden', reason: 'app-unknown', rule: '', claims: null, app: app };
    policy = section;
  }
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
  // With assertions on, the app's assertion cookie is read in the same scan (core/assertion.ts).
  const assertionConfig = config.assertion;
  // readCookies also without them (no family): the gate bundle then carries one cookie scanner (njs
  // builds every function of the bundle again for each request, ~600 CPU instructions each).
  const cookie = readCookies(input.cookieHeaders, config.cookieName, assertionConfig === undefined ? '' : assertionConfig.cookieName, app || '');
  let reason: DenyReason;
  let claims: SessionClaims | null = null;
  let escaped = false;
  if (cookie.status === 'ok') {
    const verified = verifySessionToken(cookie.value, {
      config: config,
      now: input.now,
      remoteAddr: input.remoteAddr,
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
      const upstreamCookie =
        cookie.status === 'ok' ? cookie.rest : cookie.status === 'missing' ? (cookie.rest !== undefined ? cookie.rest : joinCookies(input.cookieHeaders)) : '';
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
    if (assertionConfig === undefined) {
      return {
        action: 'allow',
        claims: claims,
        reason: 'session-valid',
        headers: forwardedHeaders(claims, escaped),
        upstreamCookie: cookie.rest,
        rule: rule,
      };
    }
    // Bound to this token (core/assertion.ts): its payload segment starts with the prefix of
    // `{"bind":"`, then the 16 characters that decode to the first 12 of this token's signature.
    // The assertion itself is never decoded or verified here (the app verifies it); the check only
    // keeps another session's assertion from being paired with this one. Spelled out rather than a
    // function: njs builds every function of the bundle again for each request.
    const assertion = cookie.companion;
    const dot = assertion === null ? -1 : assertion.indexOf('.');
    const token = cookie.value;
    if (
      assertion !== null &&
      dot > 0 &&
      assertion.substr(dot + 1, 12) === ASSERTION_PAYLOAD_PREFIX &&
      input.decode(assertion.substr(dot + 13, 16)) === token.substr(token.lastIndexOf('.') + 1, ASSERTION_BINDING_LENGTH)
    ) {
      return {
        action: 'allow',
        claims: claims,
        reason: 'session-valid',
        headers: forwardedHeaders(claims, escaped),
        upstreamCookie: cookie.rest,
        rule: rule,
        assertion: assertion,
      };
    }
    // Missing, duplicated, or another token's (an older one, another user's): a fresh one comes
    // through the renewal path, keyed by token and app, so parallel requests share one.
    return {
      action: 'renew',
      reason: 'assertion-missing',
      location: wantsHtml(input.accept) ? loginRedirectLocation(config.loginPath, input.requestUri) : '',
      rule: rule,
      // ':' here, '.' for an expired token: nginx keeps renewal answers 5 s under this key, and an
      // assertion-only answer (no new session cookie) must never answer the expired token's renewal.
      renewKey: token.slice(token.lastIndexOf('.') + 1) + ':' + (app || ''),
    };
  }
  const html = wantsHtml(input.accept);
  if (reason === 'token-expired') {
    const token = cookie.status === 'ok' ? cookie.value : '';
    return {
      action: 'renew',
      reason: reason,
      location: html ? loginRedirectLocation(config.loginPath, input.requestUri) : '',
      rule: '',
      // With assertions, the renewal also answers the app's assertion: the app is part of the key.
      renewKey: token.slice(token.lastIndexOf('.') + 1) + (assertionConfig === undefined ? '' : '.' + (app || '')),
    };
  }
  if (html) {
    return { action: 'login', reason: reason, location: loginRedirectLocation(config.loginPath, input.requestUri), rule: '' };
  }
  return { action: 'deny', reason: reason, rule: '' };
}

/** The part of an njs shared dict the gate uses: is this `sid` among the revoked sessions? */
export interface RevokedSessions {
  has(sid: string): boolean;
}

/**
 * decideRequest for njs >= 0.8 with the revocation dict (adapter.ts checkRevocable; njs 0.7.9's
 * gate.js does not contain it). `decideFor` is decideRequest on this request with the given Cookie
 * header(s), `cookieName` the session cookie's name. A session whose token verifies (allowed, or
 * refused by the policy) but whose `sid` is in `revoked` (ended at the auth service less than a
 * token lifetime ago) is decided again without its session cookie, so it gets
 * what an anonymous request gets: `login`/`deny` with reason `session-revoked` (never `renew`: the
 * auth service would refuse), or, on a public path, the anonymous `allow` with `sessionProblem`
 * `session-revoked` (or a public deny's 403). Everything else is decideRequest's decision unchanged.
 * Not checked: anything about the dict's freshness (the poller's job, revocations.ts).
 */
export function decideRevocable(
  decideFor: (cookieHeaders: CookieHeaders) => Decision,
  cookieHeaders: CookieHeaders,
  cookieName: string,
  revoked: RevokedSessions | undefined,
): Decision {
  const decision = decideFor(cookieHeaders);
  if (revoked === undefined) return decision;
  // A verified session: let through, or refused by the policy (403 would name the user in the log).
  const claims = decision.action === 'allow' || decision.action === 'forbidden' ? decision.claims : null;
  if (claims === null || typeof claims.sid !== 'string' || !revoked.has(claims.sid)) return decision;
  // Only the other cookies: the session cookie is the one being refused.
  const again = decideFor(removeCookie(cookieHeaders, cookieName));
  if (again.action === 'login') return { action: 'login', reason: 'session-revoked', location: again.location, rule: again.rule };
  if (again.action === 'deny') return { action: 'deny', reason: 'session-revoked', rule: again.rule };
  if (again.action === 'allow') again.sessionProblem = 'session-revoked';
  return again;
}
