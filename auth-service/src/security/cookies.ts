/**
 * Set-Cookie values built by hand, so that the attributes and their order are exactly what the
 * tests and operators expect (Express's res.cookie adds Expires and encodes values).
 */
export interface CookieAttributes {
  sameSite: 'Lax' | 'Strict';
  /** Seconds; omitted for a browser-session cookie, 0 to delete. */
  maxAge?: number;
  secure: boolean;
}

/**
 * `name=value; HttpOnly; SameSite=…; Path=/[; Max-Age=n][; Secure]`. Cookies set here are always
 * HttpOnly and host-only (no Domain), with Path=/ so every path of the gateway sends them.
 * Not checked: the name and value characters (callers pass validated names and base64url values).
 */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  let cookie = `${name}=${value}; HttpOnly; SameSite=${attributes.sameSite}; Path=/`;
  if (attributes.maxAge !== undefined) cookie += `; Max-Age=${attributes.maxAge}`;
  if (attributes.secure) cookie += '; Secure';
  return cookie;
}

/**
 * The largest `name=value` a session cookie may have: browsers keep at least 4096 bytes per cookie
 * (RFC 6265 section 6.1) and Chromium and Firefox drop a bigger one silently, so the user would be
 * sent back to the login page with no explanation.
 */
export const MAX_COOKIE_BYTES = 4096;

/** Bytes of `name=value`, the part browsers count against MAX_COOKIE_BYTES. */
export function cookieSize(name: string, value: string): number {
  return Buffer.byteLength(`${name}=${value}`, 'utf8');
}

/**
 * The prefix of the gateway's cookie names: `__Host-` when PUBLIC_BASE_URL is https, else none.
 * A `__Host-` cookie is accepted by browsers only with `Secure`, `Path=/` and no `Domain`, from a
 * secure origin (RFC 6265bis section 4.1.3.2), so a sibling subdomain or a plain-http page cannot
 * plant or overwrite it. Keyed on configuration, never on the request, so that the gate (which reads
 * the session cookie by name, GateConfig.cookieName) and the service always agree.
 */
export function cookieNamePrefix(publicBaseUrl: string | null): '' | '__Host-' {
  return publicBaseUrl !== null && publicBaseUrl.toLowerCase().startsWith('https:') ? '__Host-' : '';
}
