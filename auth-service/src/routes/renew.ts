/**
 * /auth/renew: silent renewal of the session cookie (services/renewal.ts). nginx calls it from
 * @gate_renew (snippets/gate-server.conf) through the internal location /_gate/renew; it is not
 * published to clients.
 */
import { Router, type Request, type Response } from 'express';
import { readCookie } from '../../../njs/src/core/cookie.js';
import type { AuthConfig } from '../config.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { serializeSessionCookie } from '../security/cookies.js';
import type { RenewalResult, RenewalService } from '../services/renewal.js';
import { localsOf } from './context.js';

export const RENEW_PATH = '/auth/renew';

export interface RenewRouteDeps {
  config: Pick<AuthConfig, 'session' | 'sso'>;
  renew: RenewalService;
}

/**
 * POST answers 204 with the new cookie; GET answers 200 `{"exp": <seconds>}` with it (for nginx's
 * subrequest, which can read a body). A refusal answers 401 `{error:'unauthenticated', reason, login}`
 * with a cookie-clearing Set-Cookie and the reason in `X-Renewal-Refused`; a store that cannot answer 503 `{error:'store-unavailable'}`, an unreadable compiled policy 503
 * `{error:'policy-unavailable'}`, an identity source that cannot answer 503 `{error:'idp-unavailable'}` or
 * `{error:'tableau-unavailable'}` (no cookie change: the session is kept).
 * The cookie has the attributes a sign-in gives it (HttpOnly, SameSite=Lax, Secure per AUTH_COOKIE_SECURE).
 */
/**
 * Renews the request's session cookie and puts the answer's Set-Cookie on `res`: the new token, or
 * a clearing cookie when the renewal is refused (401, reason also in `X-Renewal-Refused`). Nothing
 * is set for a 503. Shared by /auth/renew and /auth/about (which renews an expired token itself).
 */
export async function renewRequestCookie(req: Request, res: Response, deps: RenewRouteDeps): Promise<RenewalResult> {
  const { config } = deps;
  const cookie = readCookie(req.headers.cookie, config.session.cookieName);
  const result = await deps.renew({
    token: cookie.status === 'ok' ? cookie.value : undefined,
    clientIp: normaliseClientIp(req.ip),
    requestId: localsOf(res).requestId,
  });
  if (result.ok) {
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, result.token, result.maxAgeSeconds));
  } else if (result.status === 401) {
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, '', 0));
    // For nginx (@gate_renew_refused), which cannot read the body of an auth_request answer.
    res.setHeader('X-Renewal-Refused', result.reason);
  }
  return result;
}

/** The JSON answer of a renewal that gave no token: 503 `{error}`, or 401 unauthenticated with the reason. */
export function answerRenewalRefused(res: Response, result: Extract<RenewalResult, { ok: false }>): void {
  if (result.status === 503) res.status(503).json({ error: result.reason });
  else res.status(401).json({ error: 'unauthenticated', reason: result.reason, login: '/login' });
}

export function createRenewRouter(deps: RenewRouteDeps): Router {
  const router = Router();

  async function handle(req: Request, res: Response): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    const result = await renewRequestCookie(req, res, deps);
    if (!result.ok) {
      answerRenewalRefused(res, result);
      return;
    }
    if (req.method === 'GET') res.status(200).json({ exp: result.claims.exp });
    else res.status(204).end();
  }

  router.post(RENEW_PATH, handle);
  router.get(RENEW_PATH, handle);
  return router;
}
