import type { RequestHandler } from 'express';

/**
 * The login pages carry no script, load nothing external, post only to themselves and must never
 * be framed (clickjacking a sign-in form) or cached (a shared machine's back button).
 */
export const CONTENT_SECURITY_POLICY = "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'";

/**
 * CONTENT_SECURITY_POLICY with APP_ORIGINS added to form-action: browsers apply form-action to the
 * redirects after a form post too, and a sign-in for another app host ends with a redirect to its
 * hand-off URL.
 */
export function contentSecurityPolicy(appOrigins: readonly string[]): string {
  return appOrigins.length === 0 ? CONTENT_SECURITY_POLICY : `${CONTENT_SECURITY_POLICY} ${appOrigins.join(' ')}`;
}

/** Sets the security headers on every response, before any route runs. */
export function securityHeaders(appOrigins: readonly string[] = []): RequestHandler {
  const csp = contentSecurityPolicy(appOrigins);
  return (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  };
}
