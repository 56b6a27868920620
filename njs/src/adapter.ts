/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The only file that touches nginx (`r`) and njs built-ins. Wired as `js_set $gate gate.check;`
 * with the js_var variables listed in nginx/gate.conf. The decision itself is core/decide.ts.
 */
import crypto from 'crypto';
import { decideRequest } from './core/decide.js';
import { gateConfigProblem } from './core/gate-config.js';
import { FORWARDED_CLAIMS } from './core/session-contract.js';
import type { DenyReason, GateConfig } from './core/session-contract.js';

/** Loaded once per config load by `js_preload_object gate_config from ...;`. */
declare const gate_config: unknown;

/** The result of `$gate`: protect.conf redirects on 'login' and answers 401 on anything but 'allow'. */
export type GateAction = 'allow' | 'login' | 'deny';

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

/** Signs of tampering: logged at warn. Expired/missing/not-yet-valid are normal and stay quiet. */
function isForgery(reason: DenyReason): boolean {
  return reason === 'token-invalid' || reason === 'token-malformed' || reason === 'token-duplicate';
}

/** Error text for the log, with anything token-like (20+ base64url chars) blanked out. */
function describeError(e: unknown): string {
  const text = e instanceof Error ? e.name + ': ' + e.message : String(e);
  return text.replace(/[A-Za-z0-9_-]{20,}/g, '[redacted]').slice(0, 300);
}

/**
 * `js_set $gate gate.check;` — returns 'allow', 'login' or 'deny', and writes
 * `$gate_reason` (deny reason, or 'session-valid' on allow), `$gate_user` (username on allow),
 * `$gate_location` (login URL on login), `$gate_cookie` (upstream Cookie header on allow) and
 * `$gate_h_<claim>` for each FORWARDED_CLAIMS entry present in the token.
 *
 * Several Cookie headers: njs's `r.headersIn.Cookie` joins them with ';' (measured on njs 0.7.9),
 * which the strict parser splits like any other separator, so duplicates across headers are seen.
 *
 * Fails closed: any exception (including a missing or malformed gate_config) returns 'deny' with
 * reason `gate-error` and an error log line carrying $request_id, never the token or cookie.
 */
export function check(r: NginxHTTPRequest): GateAction {
  try {
    const problem = gateConfigProblem(typeof gate_config === 'undefined' ? undefined : gate_config);
    if (problem !== null) throw new Error('invalid gate_config: ' + problem);
    const config = gate_config as GateConfig;
    const v = r.variables;
    const decision = decideRequest({
      cookieHeaders: r.headersIn.Cookie,
      accept: r.headersIn.Accept,
      requestUri: v.request_uri || '/',
      remoteAddr: r.remoteAddress,
      now: Math.floor(Date.now() / 1000),
      config: config,
      hmac: hmacSha256,
      digest: sha256Digest,
      decode: decodeBase64url,
    });

    if (decision.action === 'allow') {
      const headers = decision.headers;
      for (let i = 0; i < FORWARDED_CLAIMS.length; i++) {
        const name = FORWARDED_CLAIMS[i];
        const value = headers[name];
        if (value !== undefined) v['gate_h_' + name] = value;
      }
      v.gate_user = headers.username;
      v.gate_reason = 'session-valid';
      v.gate_cookie = decision.upstreamCookie;
      return 'allow';
    }

    v.gate_reason = decision.reason;
    if (isForgery(decision.reason)) {
      r.warn('gate: rejected session token reason=' + decision.reason + ' request_id=' + v.request_id);
    }
    if (decision.action === 'login') {
      v.gate_location = decision.location;
      return 'login';
    }
    return 'deny';
  } catch (e) {
    let requestId = '';
    try {
      r.variables.gate_reason = 'gate-error';
      requestId = String(r.variables.request_id);
    } catch (e2) {
      // Nothing more can be done; the request is denied below either way.
    }
    r.error('gate: gate-error request_id=' + requestId + ' error=' + describeError(e));
    return 'deny';
  }
}
