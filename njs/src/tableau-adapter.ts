/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The Tableau REST API pass-through, its own njs module (njs/dist/tableau.js): nginx imports it in
 * the /api/ location only (snippets/tableau-api.conf), so the gate's hot path never pays for it.
 * njs 0.7.9 builds every function of a module again for each request its location serves (a few
 * hundred CPU instructions each), so code the allow path does not run lives here.
 */
import { readCookie, setCookieValue, type CookieResult } from './core/cookie.js';
import { appSection, decideAccess, isPolicyOff } from './core/policy.js';
import type { CompiledPolicy } from './core/policy-contract.js';
import { isPathTooLong, policyPath } from './core/request-path.js';
import { TABLEAU_TOKEN_CLAIM } from './core/session-contract.js';
import { TABLEAU_IV_BYTES, crossSiteProblem, isSealedShape, readTableauCredentials, tableauKeyFor, tableauUpstreamUrl } from './core/tableau-api.js';
import { verifySessionToken } from './core/token.js';
import { decodeBase64url, decodeUtf8, hmacSha256, isWarned, loadRuntime, logGateError, logText, nowSeconds, sha256Digest, type NgxWithShared } from './adapter.js';

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
 * `location /api/ { set $gate_tableau_api_path /api/; js_import tableau from tableau.js; js_content tableau.api; }`
 * (nginx/tableau-api/, the prefix is TABLEAU_API_PATH) — the Tableau REST API pass-through. It runs
 * only for requests under that prefix, never on the gate's allow path; Tableau receives them under
 * its own /api/.
 *
 * Verifies the session cookie with the same core code as `check`, then opens the session's
 * sealed Tableau credentials (`tta`, AES-256-GCM with the gate config's key for the token's
 * header segment) and internally redirects to `/_gate/tableau-api` with `$gate_tableau_token`,
 * `$gate_tableau_url` (Tableau origin + the judged path, re-escaped, + the raw query) and
 * `$gate_tableau_host` set. Unsafe methods must be same-origin first (core crossSiteProblem): else
 * 403 `cross-site-request`, before the session is looked at.
 *
 * Without Tableau in the gate config, redirects to the named location `@protected_app` (the site's
 * usual protected proxy), so /api/ stays the app's. An expired session token that is otherwise
 * valid is renewed first (internal redirect to @gate_renew, which comes back here with
 * `$gate_renewed_cookie` set). Otherwise answers itself, as JSON: 401 `unauthenticated` for no or an
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
      r.warn('gate: refused a cross-site ' + r.method + ' to the Tableau API path (' + csrf + ') request_id=' + v.request_id);
      answerJson(r, 403, {
        error: 'forbidden',
        reason: 'cross-site-request',
        detail: 'Unsafe methods on the Tableau API path must come from this site: send Origin (or Sec-Fetch-Site: same-origin).',
      });
      return;
    }
    // Back from @gate_renew (an expired token renewed): the new token, not the request's cookie.
    const renewed = setCookieValue(v.gate_renewed_cookie || '', config.cookieName);
    const cookie: CookieResult = renewed === null ? readCookie(r.headersIn.Cookie, config.cookieName) : { status: 'ok', value: renewed, rest: '' };
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
      if (verified.reason === 'token-expired' && renewed === null) {
        // Renewed as on any protected location (snippets/gate-server.conf); renew.js comes back here.
        v.gate_reason = 'token-expired';
        v.gate_renew_key = cookie.value.slice(cookie.value.lastIndexOf('.') + 1);
        r.internalRedirect('@gate_renew');
        return;
      }
      if (isWarned(verified.reason)) r.warn('gate: rejected session token reason=' + verified.reason + ' request_id=' + v.request_id);
      unauthenticated(r, verified.reason);
      return;
    }
    // As the gate (adapter.ts decide): a session ended recently is refused on njs >= 0.8.
    const shared = (ngx as NgxWithShared).shared;
    const revoked = shared === undefined ? undefined : shared.gate_revoked;
    if (revoked !== undefined && typeof verified.claims.sid === 'string' && revoked.has(verified.claims.sid)) {
      unauthenticated(r, 'session-revoked');
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
    // The app of the location (`set $gate_app NAME;`), as the gate picks it (core/decide.ts): an app
    // the policy lacks, or any app without a policy, is refused.
    const app = v.gate_app || '';
    const off = isPolicyOff(runtime.policy);
    const section = app === '' ? (off ? null : (runtime.policy as CompiledPolicy)) : off ? null : appSection(runtime.policy as CompiledPolicy, app);
    if (app !== '' && section === null) {
      v.gate_reason = 'app-unknown';
      r.error('gate: app-unknown app=' + app + ' request_id=' + v.request_id + ' (no such app in the compiled policy)');
      answerJson(r, 403, { error: 'forbidden', reason: 'app-unknown' });
      return;
    }
    if (section !== null) {
      const access = decideAccess(section, {
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
    // The location's own prefix (TABLEAU_API_PATH), set beside js_content; '/api/' for a location
    // written before the setting existed.
    const url = tableauUpstreamUrl(tableau.origin, path, v.request_uri || '', v.gate_tableau_api_path || '/api/');
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
