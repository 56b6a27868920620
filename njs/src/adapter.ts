/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The only file that touches nginx (`r`) and njs built-ins. Wired as `js_set $gate gate.check;`
 * with the js_var variables listed in nginx/gate.conf. The decision itself is core/decide.ts.
 */
import crypto from 'crypto';
import { readCookie } from './core/cookie.js';
import { claimHeaderValue, decideRequest } from './core/decide.js';
import { decideAccess, gatePolicyProblem, isPolicyOff } from './core/policy.js';
import type { CompiledPolicy, GatePolicy } from './core/policy-contract.js';
import { isPathTooLong, policyPath } from './core/request-path.js';
import { gateConfigProblem } from './core/gate-config.js';
import { TABLEAU_TOKEN_CLAIM } from './core/session-contract.js';
import type { DenyReason, GateConfig } from './core/session-contract.js';
import { TABLEAU_IV_BYTES, crossSiteProblem, isSealedShape, readTableauCredentials, tableauKeyFor, tableauUpstreamUrl } from './core/tableau-api.js';
import { verifySessionToken } from './core/token.js';

/** Loaded once per config load by `js_preload_object gate_config from ...;`. */
declare const gate_config: unknown;
/** Loaded once per config load by `js_preload_object gate_policy from ...;` (runtime/policy.json). */
declare const gate_policy: unknown;

/**
 * The result of `$gate`, acted on by snippets/protect.conf: 'allow' proxies; 'login' redirects to
 * `$gate_location`; 'forbidden' answers 403 (the policy refused); 'bad-request' answers 400 (an
 * ambiguous path); 'deny' answers 401.
 */
export type GateAction = 'allow' | 'login' | 'deny' | 'forbidden' | 'bad-request';

/** The preloaded config and policy, shape-checked; throws (→ gate-error) when either is unusable. */
function loadRuntime(): { config: GateConfig; policy: GatePolicy } {
  const problem = gateConfigProblem(typeof gate_config === 'undefined' ? undefined : gate_config);
  if (problem !== null) throw new Error('invalid gate_config: ' + problem);
  const policyProblem = gatePolicyProblem(typeof gate_policy === 'undefined' ? undefined : gate_policy);
  if (policyProblem !== null) throw new Error('invalid gate_policy: ' + policyProblem);
  return { config: gate_config as GateConfig, policy: gate_policy as GatePolicy };
}

/** Whole seconds since the epoch. No Math.floor: `Math`'s first use costs ~2,500 CPU instructions per request in njs 0.7.9. */
function nowSeconds(): number {
  const ms = Date.now();
  return (ms - (ms % 1000)) / 1000;
}

function hmacSha256(secret: string, data: string): string {
  return crypto.createHmac('sha256', secret).update(data).digest('base64url');
}

function sha256Digest(s: string): string {
  // base64url rather than hex: a shorter string to build, measurably cheaper in njs.
  return crypto.createHash('sha256').update(s).digest('base64url');
}

function decodeBase64url(s: string): string {
  return Buffer.from(s, 'base64url').toString();
}

/**
 * $uri as text: njs hands nginx variables over as byte strings (measured on 0.7.9: `/caf%C3%A9` has
 * length 6 and toLowerCase leaves `É` alone); invalid UTF-8 becomes U+FFFD, which policyPath refuses.
 */
function decodeUtf8(bytes: string): string {
  return Buffer.from(bytes).toString();
}

/**
 * A claim for the access log only: strings as they are (the log format escapes them as JSON), else
 * ''. Cheaper than claimHeaderValue, whose regex replace allocates ~20 KB per call in njs.
 */
function logText(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Refusals logged at warn: signs of tampering (invalid, malformed, duplicate), a key past its grace
 * period or a session past the maximum age (an old cookie, or someone minting tokens with a retired
 * key), and an IP-binding refusal (so operators see when SESSION_IP_BINDING signs people out).
 * Expired/missing/not-yet-valid are normal and stay quiet.
 */
function isWarned(reason: DenyReason): boolean {
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
function logGateError(r: NginxHTTPRequest, e: unknown): void {
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
    const v = r.variables;
    const decision = decideRequest({
      cookieHeaders: r.headersIn.Cookie,
      accept: r.headersIn.Accept,
      requestUri: v.request_uri || '/',
      uri: v.uri || '',
      method: r.method,
      remoteAddr: r.remoteAddress,
      now: nowSeconds(),
      config: runtime.config,
      policy: runtime.policy,
      hmac: hmacSha256,
      digest: sha256Digest,
      decode: decodeBase64url,
      utf8: decodeUtf8,
    });
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
      return 'allow';
    }

    v.gate_reason = decision.reason;
    // nginx answers refusals through error_page, which turns the method into GET and $uri into the
    // error page before the access log is written: keep the real ones for the log (refusals only,
    // nothing on the allow path).
    v.gate_method = r.method;
    v.gate_uri = v.uri || '';
    if (decision.action === 'forbidden') {
      if (decision.claims !== null) {
        v.gate_user = claimHeaderValue(decision.claims.username) || '';
        v.gate_src = logText(decision.claims.src);
      }
      return 'forbidden';
    }
    if (decision.action === 'bad-request') return 'bad-request';
    if (isWarned(decision.reason)) {
      r.warn('gate: rejected session token reason=' + decision.reason + ' request_id=' + v.request_id);
    }
    if (decision.action === 'login') {
      v.gate_location = decision.location;
      return 'login';
    }
    return 'deny';
  } catch (e) {
    logGateError(r, e);
    return 'deny';
  }
}

/** Answers a JSON error from a js_content handler (no error_page applies to it). */
function answerJson(r: NginxHTTPRequest, status: number, body: { [field: string]: string }): void {
  r.headersOut['Content-Type'] = 'application/json';
  r.headersOut['Cache-Control'] = 'no-store';
  r.return(status, JSON.stringify(body) + '\n');
}

function unauthenticated(r: NginxHTTPRequest, reason: string): void {
  r.variables.gate_reason = reason;
  answerJson(r, 401, { error: 'unauthenticated', reason: reason, login: '/login' });
}

/**
 * `location /api/ { js_content gate.tableauApi; }` (nginx/snippets/tableau-api.conf) — the
 * Tableau REST API pass-through. It runs only for /api/ requests, never on the gate's allow path.
 *
 * Verifies the session cookie with the same core code as `check`, then opens the session's
 * sealed Tableau credentials (`tta`, AES-256-GCM with the gate config's key for the token's
 * header segment) and internally redirects to `/_gate/tableau-api` with `$gate_tableau_token`,
 * `$gate_tableau_url` (Tableau origin + the judged path, re-escaped, + the raw query) and
 * `$gate_tableau_host` set. Unsafe methods must be same-origin first (core crossSiteProblem): else
 * 403 `cross-site-request`, before the session is looked at.
 *
 * Without Tableau in the gate config, redirects to the named location `@protected_app` (the site's
 * usual protected proxy), so /api/ stays the app's. Otherwise answers itself, as JSON: 401 `unauthenticated` for no or an
 * invalid session (any reason the gate knows), a session without `tta` (`tableau-session-missing`),
 * one that does not decrypt (`tableau-session-invalid`, logged as a warning) or whose token expired
 * (`tableau-session-expired`); 400 `path-ambiguous` for a path policyPath refuses (with or without a
 * policy); with a policy, 403 `policy-denied` as `check` decides it (a signed-in user is required here even where a public rule allows);
 * 500 `gate-error` on any exception. Never logs the token.
 * Not checked: whether Tableau still accepts the token (Tableau answers 401 itself).
 */
export async function tableauApi(r: NginxHTTPRequest): Promise<void> {
  try {
    const runtime = loadRuntime();
    const config = runtime.config;
    const tableau = config.tableau;
    if (tableau === undefined || tableau === null) {
      // Tableau is off: /api/ is the protected app's like any other path (the site defines it).
      r.internalRedirect('@protected_app');
      return;
    }
    const v = r.variables;
    const csrf = crossSiteProblem(r.method, r.headersIn['Sec-Fetch-Site'], r.headersIn.Origin, v.scheme + '://' + (r.headersIn.Host || ''));
    if (csrf !== null) {
      v.gate_reason = 'cross-site-request';
      v.gate_method = r.method;
      r.warn('gate: refused a cross-site ' + r.method + ' to /api/ (' + csrf + ') request_id=' + v.request_id);
      answerJson(r, 403, {
        error: 'forbidden',
        reason: 'cross-site-request',
        detail: 'Unsafe methods on /api/ must come from this site: send Origin (or Sec-Fetch-Site: same-origin).',
      });
      return;
    }
    const cookie = readCookie(r.headersIn.Cookie, config.cookieName);
    if (cookie.status !== 'ok') {
      unauthenticated(r, cookie.status === 'duplicate' ? 'token-duplicate' : 'token-missing');
      return;
    }
    const now = nowSeconds();
    const verified = verifySessionToken(cookie.value, {
      config: config,
      now: now,
      remoteAddr: r.remoteAddress,
      hmac: hmacSha256,
      digest: sha256Digest,
      decode: decodeBase64url,
    });
    if (!verified.ok) {
      if (isWarned(verified.reason)) r.warn('gate: rejected session token reason=' + verified.reason + ' request_id=' + v.request_id);
      unauthenticated(r, verified.reason);
      return;
    }
    v.gate_user = verified.claims.username;
    v.gate_src = logText(verified.claims.src);
    // The path the policy judges is also the one Tableau receives, with or without a policy.
    const uri = v.uri || '';
    if (isPathTooLong(uri)) {
      v.gate_reason = 'path-too-long';
      answerJson(r, 400, { error: 'bad-request', reason: 'path-too-long' });
      return;
    }
    const path = policyPath(uri, v.request_uri || '', decodeUtf8);
    if (path === null) {
      v.gate_reason = 'path-ambiguous';
      answerJson(r, 400, { error: 'bad-request', reason: 'path-ambiguous' });
      return;
    }
    if (!isPolicyOff(runtime.policy)) {
      const access = decideAccess(runtime.policy as CompiledPolicy, {
        method: r.method,
        path: path,
        claims: verified.claims,
        remoteAddr: r.remoteAddress,
        now: now,
      });
      v.gate_rule = access.rule;
      if (access.decision !== 'allow') {
        v.gate_reason = 'policy-denied';
        answerJson(r, 403, { error: 'forbidden', reason: 'policy-denied' });
        return;
      }
    }
    const sealed = verified.claims[TABLEAU_TOKEN_CLAIM];
    const key = tableauKeyFor(tableau, cookie.value);
    if (!isSealedShape(sealed) || key === null) {
      unauthenticated(r, 'tableau-session-missing');
      return;
    }
    const raw = Buffer.from(sealed, 'base64url');
    // The WebCrypto global; the module-level `crypto` here is njs's node-like module.
    const subtle = (globalThis as unknown as { crypto: Crypto }).crypto.subtle;
    // njs-types 0.7.x leaves AES-GCM out of its unions, though njs 0.7.9 implements it (njs-notes).
    const aes = await subtle.importKey('raw', Buffer.from(key, 'base64url'), 'AES-GCM' as unknown as ImportAlgorithm, false, ['decrypt']);
    let plain: ArrayBuffer;
    try {
      const gcm: AesGcmParams = { name: 'AES-GCM', iv: raw.slice(0, TABLEAU_IV_BYTES) };
      plain = await subtle.decrypt(gcm as unknown as CipherAlgorithm, aes, raw.slice(TABLEAU_IV_BYTES));
    } catch (e) {
      r.warn('gate: tableau credentials did not decrypt request_id=' + v.request_id);
      unauthenticated(r, 'tableau-session-invalid');
      return;
    }
    const creds = readTableauCredentials(Buffer.from(plain).toString(), now);
    if (creds === null) {
      unauthenticated(r, 'tableau-session-expired');
      return;
    }
    const url = tableauUpstreamUrl(tableau.origin, path, v.request_uri || '');
    if (url === null) {
      v.gate_reason = 'path-ambiguous';
      answerJson(r, 400, { error: 'bad-request', reason: 'path-ambiguous' });
      return;
    }
    v.gate_reason = 'session-valid';
    v.gate_tableau_token = creds.token;
    v.gate_tableau_url = url;
    v.gate_tableau_host = tableau.host;
    r.internalRedirect('/_gate/tableau-api');
  } catch (e) {
    logGateError(r, e);
    answerJson(r, 500, { error: 'gate-error' });
  }
}
