/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The gate's side of nginx (`r`) and njs built-ins. Wired as `js_set $gate gate.check;` with the
 * js_var variables listed in nginx/gate.conf. The decision itself is core/decide.ts. Its helpers are
 * shared with tableau-adapter.ts (the /api/ pass-through, a module of its own).
 */
import crypto from 'crypto';
import { claimHeaderValue, decideRequest, decideRevocable, type Decision, type RevokedSessions } from './core/decide.js';
import { gatePolicyProblem } from './core/policy.js';
import type { GatePolicy } from './core/policy-contract.js';
import { gateConfigProblem } from './core/gate-config.js';
import type { DenyReason, GateConfig } from './core/session-contract.js';

/** njs >= 0.8's `ngx.shared` (js_shared_dict_zone), which njs-types 0.7 does not declare. */
export type NgxWithShared = { shared?: { [zone: string]: RevokedSessions | undefined } };

/** Loaded once per config load by `js_preload_object gate_config from ...;`. */
declare const gate_config: unknown;
/** Loaded once per config load by `js_preload_object gate_policy from ...;` (runtime/policy.json). */
declare const gate_policy: unknown;

/**
 * The result of `$gate`, acted on by snippets/protect.conf: 'allow' proxies; 'login' redirects to
 * `$gate_location`; 'forbidden' answers 403 (the policy refused); 'bad-request' answers 400 (an
 * ambiguous path); 'deny' answers 401; 'renew' (an expired token, otherwise valid) sends the request
 * to @gate_renew (snippets/gate-server.conf), which renews the session and calls renew.ts.
 */
export type GateAction = 'allow' | 'login' | 'deny' | 'forbidden' | 'bad-request' | 'renew';

/** The preloaded config and policy, shape-checked; throws (→ gate-error) when either is unusable. */
export function loadRuntime(): { config: GateConfig; policy: GatePolicy } {
  const problem = gateConfigProblem(typeof gate_config === 'undefined' ? undefined : gate_config);
  if (problem !== null) throw new Error('invalid gate_config: ' + problem);
  const policyProblem = gatePolicyProblem(typeof gate_policy === 'undefined' ? undefined : gate_policy);
  if (policyProblem !== null) throw new Error('invalid gate_policy: ' + policyProblem);
  return { config: gate_config as GateConfig, policy: gate_policy as GatePolicy };
}

/** Whole seconds since the epoch. No Math.floor: `Math`'s first use costs ~2,500 CPU instructions per request in njs 0.7.9. */
export function nowSeconds(): number {
  const ms = Date.now();
  return (ms - (ms % 1000)) / 1000;
}

export function hmacSha256(secret: string, data: string): string {
  return crypto.createHmac('sha256', secret).update(data).digest('base64url');
}

export function sha256Digest(s: string): string {
  // base64url rather than hex: a shorter string to build, measurably cheaper in njs.
  return crypto.createHash('sha256').update(s).digest('base64url');
}

export function decodeBase64url(s: string): string {
  return Buffer.from(s, 'base64url').toString();
}

/**
 * $uri as text: njs hands nginx variables over as byte strings (measured on 0.7.9: `/caf%C3%A9` has
 * length 6 and toLowerCase leaves `É` alone); invalid UTF-8 becomes U+FFFD, which policyPath refuses.
 */
export function decodeUtf8(bytes: string): string {
  return Buffer.from(bytes).toString();
}

/**
 * A claim for the access log only: strings as they are (the log format escapes them as JSON), else
 * ''. Cheaper than claimHeaderValue, whose regex replace allocates ~20 KB per call in njs.
 */
export function logText(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Refusals logged at warn: signs of tampering (invalid, malformed, duplicate), a key past its grace
 * period or a session past the maximum age (an old cookie, or someone minting tokens with a retired
 * key), and an IP-binding refusal (so operators see when SESSION_IP_BINDING signs people out).
 * Expired/missing/not-yet-valid are normal and stay quiet.
 */
export function isWarned(reason: DenyReason): boolean {
  return (
    reason === 'token-invalid' ||
    reason === 'token-malformed' ||
    reason === 'token-duplicate' ||
    reason === 'token-key-retired' ||
    reason === 'token-too-old' ||
    reason === 'ip-mismatch'
  );
}

/** Error text for the log, with anything token-like (20+ base64url chars) blanked out. */
function describeError(e: unknown): string {
  const text = e instanceof Error ? e.name + ': ' + e.message : String(e);
  return text.replace(/[A-Za-z0-9_-]{20,}/g, '[redacted]').slice(0, 300);
}

/** Marks the request `gate-error` and logs the exception with the request id, never the token. */
export function logGateError(r: NginxHTTPRequest, e: unknown): void {
  let requestId = '';
  try {
    r.variables.gate_reason = 'gate-error';
    requestId = String(r.variables.request_id);
  } catch (e2) {
    // Nothing more can be done; the caller refuses the request either way.
  }
  r.error('gate: gate-error request_id=' + requestId + ' error=' + describeError(e));
}

/**
 * `js_set $gate gate.check;` — returns a GateAction and writes
 * `$gate_reason` (deny reason, or 'session-valid' / 'public' on allow), `$gate_rule` (the policy
 * rule that decided, 'default', or empty without a policy), `$gate_location` (login URL on login),
 * `$gate_cookie` (upstream Cookie header on allow), `$gate_h_<claim>` for each FORWARDED_CLAIMS entry
 * present in the token (allow only), and `$gate_user`/`$gate_src` (username and identity source of a
 * session the policy refused: 403 only; on allow nginx takes them from `$gate_h_*`, gate.conf).
 *
 * Several Cookie headers: njs's `r.headersIn.Cookie` joins them with ';' (measured on njs 0.7.9),
 * which the strict parser splits like any other separator, so duplicates across headers are seen.
 *
 * Fails closed: any exception (including a missing or malformed gate_config or gate_policy) returns
 * 'deny' with reason `gate-error` and an error log line carrying $request_id, never the token or cookie.
 */
export function check(r: NginxHTTPRequest): GateAction {
  try {
    const runtime = loadRuntime();
    return act(r, decide(r, runtime, r.headersIn.Cookie));
  } catch (e) {
    logGateError(r, e);
    return 'deny';
  }
}

/**
 * `check` for njs >= 0.8 with NJS_REVOCATIONS=on: exported as `check` by the gate-njs08.js bundle
 * (index-njs08.ts), which the renderer installs as njs/gate.js then. A session whose sid is in
 * `ngx.shared.gate_revoked` (filled by revocations.js) is refused as `session-revoked` (see
 * decideRevocable). A bundle of its own, so that gate.js stays exactly what it was: njs 0.7.9 pays
 * per request for code like this (callgrind, nginx 1.22 + njs 0.7.9: the first use of `ngx` ~2,100
 * CPU instructions, each module-level function ~600).
 */
export function checkRevocable(r: NginxHTTPRequest): GateAction {
  try {
    const runtime = loadRuntime();
    const shared = (ngx as NgxWithShared).shared;
    const decideFor = function (cookieHeaders: string | string[] | undefined): Decision {
      return decide(r, runtime, cookieHeaders);
    };
    const revoked = shared === undefined ? undefined : shared.gate_revoked;
    return act(r, decideRevocable(decideFor, r.headersIn.Cookie, runtime.config.cookieName, revoked));
  } catch (e) {
    logGateError(r, e);
    return 'deny';
  }
}

/**
 * The gate's decision for this request, with `cookieHeaders` as its Cookie header(s). `hmac`
 * replaces hmacSha256 (bench/njs/gate-verified-cache.ts, a bench prototype, passes a cached one).
 * `app` replaces $gate_app (renew.ts passes decisionApp: after the renewal's subrequest, $gate_app
 * may hold the server's app rather than the location's).
 */
export function decide(
  r: NginxHTTPRequest,
  runtime: { config: GateConfig; policy: GatePolicy },
  cookieHeaders: string | string[] | undefined,
  hmac?: (secret: string, data: string) => string,
  app?: string,
): Decision {
  const v = r.variables;
  return decideRequest({
    cookieHeaders: cookieHeaders,
    accept: r.headersIn.Accept,
    requestUri: v.request_uri || '/',
    uri: v.uri || '',
    method: r.method,
    remoteAddr: r.remoteAddress,
    now: nowSeconds(),
    config: runtime.config,
    policy: runtime.policy,
    // An undeclared or unset $gate_app (the default app) reads as '' or undefined.
    app: app === undefined ? v.gate_app || '' : app,
    hmac: hmac || hmacSha256,
    digest: sha256Digest,
    decode: decodeBase64url,
    utf8: decodeUtf8,
  });
}

/** The app a decision is made for: what the gate kept ('-': the default app), else $gate_app. */
export function decisionApp(v: NginxHTTPRequest['variables']): string {
  const kept = v.gate_kept_app;
  if (kept) return kept === '-' ? '' : kept;
  return v.gate_app || '';
}

/** Writes the variables of a decision (see check) and returns its action. */
export function act(r: NginxHTTPRequest, decision: Decision): GateAction {
  const v = r.variables;
  if (decision.rule !== '') v.gate_rule = decision.rule;

  if (decision.action === 'allow') {
    const headers = decision.headers;
    // The forwarded claims present (forwardedHeaders), not a loop over FORWARDED_CLAIMS (see there).
    for (const name in headers) v['gate_h_' + name] = headers[name];
    // Nothing else is written on this path (see gate.conf: X-Payload-user and the log's user and
    // src are nginx maps over the $gate_h_* values).
    if (decision.claims === null && decision.sessionProblem !== undefined && isWarned(decision.sessionProblem)) {
      r.warn('gate: rejected session token reason=' + decision.sessionProblem + ' request_id=' + v.request_id);
    }
    v.gate_reason = decision.reason;
    // An unwritten js_var is empty: no write (~1 µs) when the session cookie was the only one.
    if (decision.upstreamCookie !== '') v.gate_cookie = decision.upstreamCookie;
    if (decision.assertion !== undefined) v.gate_assertion = decision.assertion;
    return 'allow';
  }

  v.gate_reason = decision.reason;
  // nginx answers refusals through error_page, which turns the method into GET and $uri into the
  // error page before the access log is written: keep the real ones for the log (refusals only,
  // nothing on the allow path).
  v.gate_method = r.method;
  v.gate_uri = v.uri || '';
  // Likewise the app ('-': the default app): the hops after a refusal or a renewal re-run the server's
  // `set $gate_app` (gate.conf $gate_kept_app). Kept once: resume (renew.ts) decides again.
  if (!v.gate_kept_app) v.gate_kept_app = v.gate_app || '-';
  if (decision.action === 'forbidden') {
    if (decision.reason === 'app-unknown') {
      // A config error (the compile-time check was skipped or the policy is older than the config).
      r.error('gate: app-unknown app=' + decision.app + ' request_id=' + v.request_id + ' (no such app in the compiled policy; run npm run policy -- lint --nginx DIR)');
      return 'forbidden';
    }
    if (decision.claims !== null) {
      v.gate_user = claimHeaderValue(decision.claims.username) || '';
      v.gate_src = logText(decision.claims.src);
    }
    return 'forbidden';
  }
  if (decision.action === 'bad-request') return 'bad-request';
  if (decision.action === 'renew') {
    // The login URL for a browser whose renewal is refused (@gate_renew_refused).
    if (decision.location !== '') v.gate_location = decision.location;
    // Parallel requests with the same expired token share one renewal (proxy_cache_lock in /_gate/renew).
    v.gate_renew_key = decision.renewKey;
    return 'renew';
  }
  if (isWarned(decision.reason)) {
    r.warn('gate: rejected session token reason=' + decision.reason + ' request_id=' + v.request_id);
  }
  if (decision.action === 'login') {
    v.gate_location = decision.location;
    return 'login';
  }
  return 'deny';
}
