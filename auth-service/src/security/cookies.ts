import { hostOf, isUnderDomain } from './sso-settings.js';

/**
 * Set-Cookie values built by hand, so that the attributes and their order are exactly what the
 * tests and operators expect (Express's res.cookie adds Expires and encodes values).
 */
export interface CookieAttributes {
  sameSite: 'Lax' | 'Strict';
  /** Seconds; omitted for a browser-session cookie, 0 to delete. */
  maxAge?: number;
  secure: boolean;
  /** SESSION_COOKIE_DOMAIN, for the session cookie only (sessionCookieDomain); absent: host-only. */
  domain?: string;
}

/**
 * `name=value; HttpOnly; SameSite=…; Path=/[; Domain=d][; Max-Age=n][; Secure]`: every Set-Cookie of
 * the auth service is built here. Cookies are always HttpOnly, with Path=/ so every path of the
 * gateway sends them, and host-only unless `domain` is given (only the session cookie, with
 * SESSION_COOKIE_DOMAIN: see sessionCookieDomain).
 * Not checked: the name, value and domain characters (callers pass validated names, base64url
 * values and the validated domain).
 */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  let cookie = `${name}=${value}; HttpOnly; SameSite=${attributes.sameSite}; Path=/`;
  if (attributes.domain !== undefined) cookie += `; Domain=${attributes.domain}`;
  if (attributes.maxAge !== undefined) cookie += `; Max-Age=${attributes.maxAge}`;
  if (attributes.secure) cookie += '; Secure';
  return cookie;
}

/**
 * The Domain attribute of the session cookie for a response to `requestHost` (the Host header): the
 * configured SESSION_COOKIE_DOMAIN when the host lies under it, else none (host-only). A host
 * outside the domain (one the session was handed to, services/sso-handoff.ts) gets a host-only
 * cookie of the same name, and clearing it there must use the same attributes, so the set and the
 * clear both come from here.
 */
export function sessionCookieDomain(cookieDomain: string | null, requestHost: string | undefined): string | undefined {
  if (cookieDomain === null || requestHost === undefined) return undefined;
  return isUnderDomain(hostOf(requestHost), cookieDomain) ? cookieDomain : undefined;
}

/** What the session cookie's Set-Cookie needs from the configuration. */
export interface SessionCookieSettings {
  session: { cookieName: string; cookieSecure: boolean };
  sso: { cookieDomain: string | null };
}

/**
 * The session cookie's Set-Cookie for a response to `requestHost`: SameSite=Lax (the browser
 * arrives from a link or the provider's redirect), the Domain of sessionCookieDomain, Max-Age
 * `maxAge` (0 clears it; pass the session's absolute lifetime when setting it).
 */
export function serializeSessionCookie(config: SessionCookieSettings, requestHost: string | undefined, value: string, maxAge: number): string {
  return serializeCookie(config.session.cookieName, value, {
    sameSite: 'Lax',
    maxAge,
    secure: config.session.cookieSecure,
    domain: sessionCookieDomain(config.sso.cookieDomain, requestHost),
  });
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

/**
 * The prefix of the session cookie's default name: cookieNamePrefix, except with
 * SESSION_COOKIE_DOMAIN, where `__Host-` is impossible (it forbids Domain) and `__Secure-` is the
 * strongest left: browsers still accept it only with Secure, from a secure origin.
 */
export function sessionCookieNamePrefix(publicBaseUrl: string | null, cookieDomain: string | null): '' | '__Host-' | '__Secure-' {
  const prefix = cookieNamePrefix(publicBaseUrl);
  return prefix === '__Host-' && cookieDomain !== null ? '__Secure-' : prefix;
}
