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

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The base64url AES key for a session token signed under `sessionToken`'s header segment, or null.
 * Call only after the session token was verified (the header segment then names a real key).
 */
export function tableauKeyFor(tableau: TableauGateConfig, sessionToken: string): string | null {
  const header = sessionToken.slice(0, sessionToken.indexOf('.'));
  if (!hasOwn.call(tableau.keys, header)) return null;
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
 * The URL to proxy to: Tableau's origin plus the raw request URI, which must start with '/api/'
 * (else null). The raw URI is what a plain `proxy_pass` without a URI part would send too.
 */
export function tableauUpstreamUrl(origin: string, requestUri: string): string | null {
  if (requestUri.indexOf('/api/') !== 0) return null;
  return origin + requestUri;
}
