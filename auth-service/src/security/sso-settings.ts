/**
 * The single sign-on settings (issue 12): SESSION_COOKIE_DOMAIN, APP_ORIGINS and the rules that tie
 * them to PUBLIC_BASE_URL. Pure checks: each returns the problem as a sentence (the caller adds the
 * variable name and the value received), or the parsed value.
 */
import net from 'node:net';

/**
 * Registrable-domain suffixes refused as a cookie domain. Browsers already refuse single-label
 * domains and the whole Public Suffix List (https://publicsuffix.org); this short list catches the
 * common mistakes at start-up instead of a sign-in that silently sets no cookie. It is not the full
 * list: `SESSION_COOKIE_DOMAIN` must be a domain the operator controls, and that is not checked.
 */
export const PUBLIC_SUFFIXES: ReadonlySet<string> = new Set([
  'co.uk', 'org.uk', 'ac.uk', 'gov.uk', 'me.uk', 'ltd.uk', 'plc.uk', 'net.uk', 'sch.uk',
  'com.au', 'net.au', 'org.au', 'edu.au', 'gov.au', 'co.nz', 'org.nz', 'net.nz', 'co.jp', 'ne.jp', 'or.jp', 'ac.jp',
  'com.br', 'com.cn', 'net.cn', 'org.cn', 'co.in', 'net.in', 'org.in', 'co.za', 'com.mx', 'com.tr', 'co.kr', 'com.sg', 'com.hk',
  'github.io', 'gitlab.io', 'herokuapp.com', 'appspot.com', 'azurewebsites.net', 'cloudfront.net', 'amazonaws.com',
  'blogspot.com', 'netlify.app', 'vercel.app', 'pages.dev', 'workers.dev', 'web.app', 'firebaseapp.com', 'azurestaticapps.net',
]);

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The host of an origin or a Host header, lowercase, without port or IPv6 brackets. */
export function hostOf(hostAndPort: string): string {
  const h = hostAndPort.toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') < 0 ? h.length : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** True when `host` is `domain` or a subdomain of it (both lowercase, no trailing dot). */
export function isUnderDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith('.' + domain);
}

/**
 * Why `domain` cannot be SESSION_COOKIE_DOMAIN for PUBLIC_BASE_URL `publicBaseUrl`, or null when it can.
 * Refused: no PUBLIC_BASE_URL; anything but lowercase DNS labels joined by single dots (a leading or
 * trailing dot, `..`, a port, a wildcard, an IP address); a single label (`com`, `localhost`); a
 * suffix in PUBLIC_SUFFIXES; a domain that is not PUBLIC_BASE_URL's host or one of its parents.
 */
export function cookieDomainProblem(domain: string, publicBaseUrl: string | null): string | null {
  if (publicBaseUrl === null) return 'needs PUBLIC_BASE_URL (the sign-in host, which must lie under this domain)';
  if (domain.startsWith('.')) return 'must be a domain without a leading dot, e.g. corp.example (browsers ignore the dot anyway)';
  if (net.isIP(domain) !== 0) return 'must be a domain name, not an IP address (a cookie for an address is host-only)';
  const labels = domain.split('.');
  if (domain.length > 253 || !labels.every((l) => LABEL.test(l))) return 'must be a lowercase domain name such as corp.example (letters, digits and -, labels joined by single dots)';
  if (labels.length < 2 || PUBLIC_SUFFIXES.has(domain)) return 'must not be a top-level domain or a public suffix (every site under it would receive the session cookie)';
  const host = hostOf(new URL(publicBaseUrl).host);
  if (!isUnderDomain(host, domain)) return `must be PUBLIC_BASE_URL's host (${host}) or one of its parent domains`;
  return null;
}

/**
 * APP_ORIGINS: a comma list of `http(s)://host[:port]` origins, exactly as a browser writes them
 * (lowercase, no path, no trailing slash, no default port). Returns the origins, or one problem per
 * bad entry. Refused besides: duplicates, credentials, an http origin when PUBLIC_BASE_URL is https
 * (the session would travel in clear), and any entry without PUBLIC_BASE_URL (the hand-off starts
 * on the sign-in host).
 */
export function parseAppOrigins(raw: string, publicBaseUrl: string | null): { ok: true; origins: string[] } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const origins: string[] = [];
  if (publicBaseUrl === null) return { ok: false, problems: ['needs PUBLIC_BASE_URL (the sign-in host that hands sessions to these origins)'] };
  const secureBase = publicBaseUrl.startsWith('https:');
  const entries = raw.split(',').map((e) => e.trim());
  entries.forEach((entry, i) => {
    const position = `entry ${i + 1} (${JSON.stringify(entry)})`;
    let url: URL | null = null;
    try {
      url = new URL(entry);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== entry) {
      problems.push(`${position} must be an origin such as https://app.example.com or https://app.example.com:8443 (scheme and host in lowercase, no path, no trailing slash)`);
      return;
    }
    if (secureBase && url.protocol === 'http:') {
      problems.push(`${position} must use https, as PUBLIC_BASE_URL does (the session would travel in clear)`);
      return;
    }
    if (origins.includes(entry)) {
      problems.push(`${position} is listed twice`);
      return;
    }
    origins.push(entry);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, origins };
}
