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
