/**
 * Return-URL handling: the gate builds the login redirect (`rd` = the raw request URI) and the
 * auth service checks `rd` before sending the browser back to it after sign-in. Rules only, no URL
 * parser: njs has no URL class, and a parser that disagrees with the browser's is exactly how open
 * redirects happen (CVE-2020-4037 and friends).
 */

/** Longest `rd` accepted. Longer values fall back to '/'. */
export const MAX_RETURN_PATH_LENGTH = 2048;

/**
 * Location of the login page for a request that has no valid session:
 * `loginPath + '?rd=' + encodeURIComponent(requestUri)`, where requestUri is nginx's raw
 * `$request_uri` (never `$host` or an absolute URL; see njs-notes). A request URI longer than
 * MAX_RETURN_PATH_LENGTH would be refused by `safeReturnPath` anyway, so it is not sent and the
 * bare login path is returned; likewise if the URI cannot be encoded (a lone surrogate in Node).
 */
export function loginRedirectLocation(loginPath: string, requestUri: string): string {
  if (requestUri.length > MAX_RETURN_PATH_LENGTH) return loginPath;
  try {
    return loginPath + '?rd=' + encodeURIComponent(requestUri);
  } catch (e) {
    return loginPath;
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  if (c <= 0x39) return c - 0x30;
  if (c <= 0x46) return c - 0x41 + 10;
  return c - 0x61 + 10;
}

/** True when a path segment is '.' or '..', also spelled with %2e (browsers treat both alike). */
function isDotSegment(segment: string): boolean {
  if (segment.length === 0 || segment.length > 6) return false;
  const s = segment.replace(/%2e/gi, '.');
  return s === '.' || s === '..';
}

/**
 * Returns `rd` if it is a safe same-origin return path, else '/'.
 *
 * Accepted: a string of at most 2048 printable ASCII characters that starts with exactly one '/'
 * and in which
 * - no character is a control, space, DEL, non-ASCII, '\', '"', '<', '>' or '`';
 * - '//' appears nowhere, not even in the query (oauth2-proxy's list refuses
 *   `/ReceiveAutoRedirect/false?desiredLocationUrl=http://xssposed.org`; a URL in a query must be
 *   percent-encoded);
 * - every '%' starts a valid `%XX` escape;
 * - in the path part (before the first '?' or '#'): no %2F, %5C, %00-%1F or %7F escape, and no
 *   '.' or '..' segment, also when spelled with %2e.
 *
 * Guaranteed: a browser resolves an accepted value against the gateway's own origin (it is a
 * path-absolute reference: no scheme, no authority, nothing browsers strip or rewrite into '/').
 * Encoded slashes in the query (`/search?q=a%2Fb`) are kept.
 *
 * Not guaranteed: that the path exists or that the user may see it; that the application behind
 * it does not itself redirect elsewhere (an open redirect inside the upstream stays one); that an
 * upstream which percent-decodes twice sees no '/' (`%252F` is kept); Tomcat-style `..;`
 * segments. Legitimate but unusual URIs (with '//', a bare '%', raw non-ASCII) fall back to '/'.
 */
export function safeReturnPath(rd: unknown): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > MAX_RETURN_PATH_LENGTH) return '/';
  if (rd.charCodeAt(0) !== 0x2f) return '/';
  const n = rd.length;
  let inPath = true;
  let segmentStart = 1;
  let prev = 0x2f;
  for (let i = 1; i < n; i++) {
    const c = rd.charCodeAt(i);
    // Controls, space, DEL and non-ASCII: browsers strip tabs/newlines and trim spaces, which turns
    // '/\t/evil' into '//evil'; CR/LF would split the Location header.
    if (c < 0x21 || c >= 0x7f) return '/';
    // Browsers treat '\' as '/'; quotes and angle brackets only help reflected-XSS payloads.
    if (c === 0x5c || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60) return '/';
    if (c === 0x2f && prev === 0x2f) return '/';
    if (c === 0x25) {
      if (i + 2 >= n || !isHex(rd.charCodeAt(i + 1)) || !isHex(rd.charCodeAt(i + 2))) return '/';
      if (inPath) {
        const v = hexValue(rd.charCodeAt(i + 1)) * 16 + hexValue(rd.charCodeAt(i + 2));
        if (v < 0x20 || v === 0x7f || v === 0x2f || v === 0x5c) return '/';
      }
    }
    if (inPath && (c === 0x2f || c === 0x3f || c === 0x23)) {
      if (isDotSegment(rd.slice(segmentStart, i))) return '/';
      segmentStart = i + 1;
      if (c !== 0x2f) inPath = false;
    }
    prev = c;
  }
  if (inPath && isDotSegment(rd.slice(segmentStart))) return '/';
  return rd;
}

/**
 * Returns `rd` if it is a safe return target, else '/': a path safeReturnPath keeps, or an absolute
 * URL that is exactly one of `allowedOrigins` (APP_ORIGINS, each `scheme://host[:port]` as a
 * browser writes it) followed by such a path (`https://app.example/reports?x=1`). Nothing else:
 * no other origin, no case or port variant, no userinfo, no `//`, `\` or control character (the
 * path part must pass safeReturnPath unchanged).
 *
 * Guaranteed: an accepted absolute value sends the browser only to a listed origin; with an empty
 * list this is safeReturnPath.
 * Not guaranteed: that the listed origin is reachable or serves the gateway.
 */
export function safeReturnTarget(rd: unknown, allowedOrigins: readonly string[]): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > MAX_RETURN_PATH_LENGTH) return '/';
  if (rd.charCodeAt(0) === 0x2f) return safeReturnPath(rd);
  for (let i = 0; i < allowedOrigins.length; i++) {
    const origin = allowedOrigins[i];
    if (rd.length > origin.length && rd.slice(0, origin.length) === origin && rd.charCodeAt(origin.length) === 0x2f) {
      const path = rd.slice(origin.length);
      return safeReturnPath(path) === path ? rd : '/';
    }
  }
  return '/';
}

/**
 * Splits a value safeReturnTarget accepted into its origin (null for a path) and its path.
 * Not checked: the value (call safeReturnTarget first).
 */
export function splitReturnTarget(target: string): { origin: string | null; path: string } {
  if (target.charCodeAt(0) === 0x2f) return { origin: null, path: target };
  const slash = target.indexOf('/', target.indexOf('//') + 2);
  return { origin: target.slice(0, slash), path: target.slice(slash) };
}
