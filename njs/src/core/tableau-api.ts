/**
 * Pure parts of the Tableau `/api/` pass-through (adapter.tableauApi does the crypto and nginx
 * calls): which AES key opens a session's `tta` claim, the shape checks before and after
 * decryption, and the upstream URL. njs 0.7.9 subset only.
 */
import { isStrictBase64url } from './base64url.js';
import type { TableauGateConfig } from './session-contract.js';

/** AES-GCM IV and tag lengths of the sealed claim (see auth-service/src/services/tableau-token.ts). */
export const TABLEAU_IV_BYTES = 12;
export const TABLEAU_TAG_BYTES = 16;

/** The credentials the gate needs from the opened claim. */
export interface OpenedTableauCredentials {
  token: string;
  siteId: string;
  userId: string;
}

/**
 * The base64url AES key for a session token signed under `sessionToken`'s header segment, or null.
 * Call only after the session token was verified (the header segment then names a real key).
 */
export function tableauKeyFor(tableau: TableauGateConfig, sessionToken: string): string | null {
  const header = sessionToken.slice(0, sessionToken.indexOf('.'));
  // A plain lookup: preloaded objects have no prototype chain, and an inherited member is never a string.
  const key = tableau.keys[header];
  return typeof key === 'string' && isStrictBase64url(key) ? key : null;
}

/**
 * True when `sealed` can be a sealed claim: strict base64url, longer than IV + tag.
 * Not checked: anything the GCM tag proves (the adapter's decrypt does).
 */
export function isSealedShape(sealed: unknown): sealed is string {
  // 4 base64url characters carry 3 bytes: more than IV + tag bytes means at least one byte of text.
  return typeof sealed === 'string' && isStrictBase64url(sealed) && Math.floor((sealed.length * 3) / 4) > TABLEAU_IV_BYTES + TABLEAU_TAG_BYTES;
}

/**
 * Reads the decrypted JSON `{t, s, u, v, x}`. Returns null when it is not that shape, the token is
 * empty or holds characters that could split a header, or `now` is past `x` (seconds).
 */
export function readTableauCredentials(json: string, now: number): OpenedTableauCredentials | null {
  let c: unknown;
  try {
    c = JSON.parse(json);
  } catch (e) {
    return null;
  }
  if (typeof c !== 'object' || c === null) return null;
  const o = c as { [field: string]: unknown };
  if (typeof o.t !== 'string' || o.t === '' || o.t.search(/[\x00-\x1f\x7f]/) >= 0) return null;
  if (typeof o.s !== 'string' || typeof o.u !== 'string') return null;
  if (typeof o.x !== 'number' || !isFinite(o.x) || now > o.x) return null;
  return { token: o.t, siteId: o.s, userId: o.u };
}

/**
 * Why an /api/ request must be refused as a possible cross-site request forgery, or null when it
 * may pass. The pass-through adds the user's Tableau token to any request that carries the session
 * cookie, so an unsafe method must prove it comes from the gateway's own pages:
 * - `Sec-Fetch-Site` (set by the browser, not by page script), when sent, must be `same-origin`
 *   (`same-site` is refused too: a sibling subdomain is another application);
 * - else `Origin` must equal `expectedOrigin` (`<scheme>://<Host header>`, compared case-insensitively);
 * - neither header: refused as well (every current browser sends one of them on an unsafe request;
 *   a script using the session cookie must send `Origin`).
 * Not checked: safe methods (GET, HEAD, OPTIONS), which Tableau's API does not let change anything.
 */
export function crossSiteProblem(
  method: string,
  secFetchSite: string | undefined,
  origin: string | undefined,
  expectedOrigin: string,
): 'cross-site' | 'same-site' | 'origin-mismatch' | 'origin-missing' | null {
  // Methods that change nothing (RFC 9110 §9.2.1). Compared one by one: a module-level array would be
  // built again for every request the gate sees, /api/ or not.
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return null;
  if (typeof secFetchSite === 'string') {
    if (secFetchSite === 'same-origin') return null;
    return secFetchSite === 'same-site' ? 'same-site' : 'cross-site';
  }
  if (typeof origin !== 'string') return 'origin-missing';
  return origin.toLowerCase() === expectedOrigin.toLowerCase() ? null : 'origin-mismatch';
}

/**
 * Re-escapes a decoded, normalised path (what the policy judged) for a request line: like
 * `encodeURI`, plus `?` and `#`, which would otherwise start a query or fragment. Returns null for
 * a path `encodeURI` cannot encode (a lone surrogate).
 */
export function escapePath(path: string): string | null {
  let escaped: string;
  try {
    escaped = encodeURI(path);
  } catch (e) {
    return null;
  }
  return escaped.indexOf('?') < 0 && escaped.indexOf('#') < 0 ? escaped : escaped.replace(/\?/g, '%3F').replace(/#/g, '%23');
}

/**
 * The URL to proxy to: Tableau's origin, the path the gate judged (`judgedPath`, decoded and
 * normalised, see request-path.ts) re-escaped with its `prefix` (the gateway's TABLEAU_API_PATH,
 * `/api/` by default) replaced by Tableau's `/api/`, and the raw query string of `requestUri`. The
 * path must start with `prefix` (else null). Sending the judged path, not the raw one, means Tableau
 * and the policy can never read one request two ways (`/api/x/..;/y`, `//`, `%2e%2e`).
 */
export function tableauUpstreamUrl(origin: string, judgedPath: string, requestUri: string, prefix: string): string | null {
  if (prefix.charAt(0) !== '/' || prefix.charAt(prefix.length - 1) !== '/' || judgedPath.indexOf(prefix) !== 0) return null;
  const path = escapePath('/api/' + judgedPath.slice(prefix.length));
  if (path === null) return null;
  const query = requestUri.indexOf('?');
  return origin + path + (query >= 0 ? requestUri.slice(query) : '');
}
