import type { RequestHandler } from 'express';

/**
 * The login pages carry no script, load nothing external, post only to themselves and must never
 * be framed (clickjacking a sign-in form) or cached (a shared machine's back button).
 */
export const CONTENT_SECURITY_POLICY = "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'";

/** Sets the security headers on every response, before any route runs. */
export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  };
}
