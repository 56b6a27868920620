/**
 * Origin checks for state-changing POSTs. Browsers send `Origin` on every cross-origin POST and
 * `Sec-Fetch-Site` (Fetch Metadata) on every request in current engines; a forged cross-site form
 * can set neither. Absent headers are accepted because old browsers and non-browser clients omit
 * them; the login form still has its CSRF token behind this check.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type OriginCheck = { ok: true } | { ok: false; reason: 'origin-mismatch' | 'cross-site' | 'same-site' };

/** Header values as Node hands them over; a repeated header counts as a mismatch. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * `proto://host` of the request as the browser addressed it: the scheme nginx reports in
 * X-Forwarded-Proto (read through Express's trust-proxy rules into `protocol`) and the Host header
 * nginx passes on unchanged. X-Forwarded-Host is deliberately ignored: nginx does not set it, so a
 * client could.
 */
export function expectedOrigin(protocol: string, headers: IncomingHttpHeaders): string | undefined {
  const host = single(headers.host);
  if (host === undefined || host === '') return undefined;
  return `${protocol}://${host}`.toLowerCase();
}

/**
 * The origins a state-changing POST may come from: the one the request was addressed to
 * (expectedOrigin) and PUBLIC_BASE_URL's, when set. The latter is what a browser sends behind a
 * balancer that terminates TLS and forwards plain http (README "Behind a load balancer"): it is
 * configuration, never read from the request, so a client cannot widen the list.
 */
export function expectedOrigins(protocol: string, headers: IncomingHttpHeaders, publicBaseUrl: string | null): string[] {
  const origins: string[] = [];
  const addressed = expectedOrigin(protocol, headers);
  if (addressed !== undefined) origins.push(addressed);
  if (publicBaseUrl !== null) origins.push(new URL(publicBaseUrl).origin.toLowerCase());
  return origins;
}

type Expected = string | readonly string[] | undefined;

function originMatches(headers: IncomingHttpHeaders, expected: Expected): boolean {
  const origin = single(headers.origin);
  if (origin === undefined) return true;
  // `Origin: null` is what a page with `Referrer-Policy: no-referrer` sends for its own same-origin
  // form posts; it is also what sandboxed frames send. Accept it only when the browser itself vouches
  // that the request is same-origin (Sec-Fetch-Site cannot be set by page script).
  if (origin === 'null') return single(headers['sec-fetch-site']) === 'same-origin';
  if (expected === undefined) return false;
  const lower = origin.toLowerCase();
  return typeof expected === 'string' ? lower === expected : expected.includes(lower);
}

/** POST /login: Origin, when sent, must be ours; `Sec-Fetch-Site: cross-site` is refused. */
export function checkLoginOrigin(headers: IncomingHttpHeaders, expected: Expected): OriginCheck {
  if (!originMatches(headers, expected)) return { ok: false, reason: 'origin-mismatch' };
  const site = single(headers['sec-fetch-site']);
  if (site === 'cross-site') return { ok: false, reason: 'cross-site' };
  return { ok: true };
}

/**
 * POST /logout has no token (the protected app's plain form posts to it), so it is stricter:
 * Origin absent or ours, and Sec-Fetch-Site absent, `same-origin` or `none` (typed URL / bookmark).
 * `same-site` is refused too: a sibling subdomain is a different application.
 */
export function checkLogoutOrigin(headers: IncomingHttpHeaders, expected: Expected): OriginCheck {
  if (!originMatches(headers, expected)) return { ok: false, reason: 'origin-mismatch' };
  const site = single(headers['sec-fetch-site']);
  if (site === undefined || site === 'same-origin' || site === 'none') return { ok: true };
  return { ok: false, reason: site === 'same-site' ? 'same-site' : 'cross-site' };
}
