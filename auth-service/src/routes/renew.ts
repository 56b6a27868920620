/**
 * /auth/renew: silent renewal of the session cookie (services/renewal.ts). nginx calls it from
 * @gate_renew (snippets/gate-server.conf) through the internal location /_gate/renew; it is not
 * published to clients.
 */
import { Router, type Request, type Response } from 'express';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { isAppName } from '../../../njs/src/core/assertion.js';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { liveSecrets, type AuthConfig } from '../config.js';
import { AppError } from '../errors.js';
import { APP_HEADER, ASSERTION_COOKIE_HEADER, assertionCookieLine } from '../services/assertion.js';
import { verifySignedClaims } from '../services/session-token.js';
import { ipBindingAllows } from '../services/tableau-token.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { serializeSessionCookie } from '../security/cookies.js';
import type { RenewalResult, RenewalService } from '../services/renewal.js';
import { localsOf } from './context.js';

export const RENEW_PATH = '/auth/renew';

export interface RenewRouteDeps {
  config: Pick<AuthConfig, 'session' | 'sso'> & Partial<Pick<AuthConfig, 'jwt' | 'assertion' | 'sessionLifetimes'>>;
  renew: RenewalService;
  /** Milliseconds since the epoch; needed with assertions on (the assertion's iat). */
  now?: () => number;
}

/**
 * With ASSERTION_KEY_FILE, nginx comes here also for a session whose token is valid but whose app
 * has no bound assertion cookie (njs/src/core/assertion.ts): such a token (HS256 with a live key,
 * not expired, bound to this address) gets only a new assertion, without a store query. Returns its
 * claims, or null when a full renewal is needed (expired, or anything else). Not checked here: the
 * server-side session (the gate does not check it either before the token expires).
 */
function liveBoundClaims(token: string, clientIp: string, config: Pick<AuthConfig, 'session' | 'jwt'>, nowSeconds: number): SessionClaims | null {
  const secrets = [config.jwt.secret, ...liveSecrets(config.jwt.previousKeys, nowSeconds)];
  const c = verifySignedClaims(token, secrets, { clockTimestamp: nowSeconds, clockTolerance: config.session.leewaySeconds });
  if (c === null) return null;
  if (typeof c.sub !== 'string' || typeof c.username !== 'string' || typeof c.src !== 'string' || typeof c.exp !== 'number' || typeof c.iat !== 'number') return null;
  if (typeof c.ip !== 'string' || !ipBindingAllows(config.session.ipBinding, c.ip, clientIp)) return null;
  return c as unknown as SessionClaims;
}

/** The app of a renewal: nginx's X-Gateway-App ($gate_app), '' for the default app; a malformed name is a 400. */
function requestedApp(req: Request): string {
  const value = req.headers[APP_HEADER];
  if (value === undefined || value === '') return '';
  if (typeof value !== 'string' || !isAppName(value)) throw new AppError('ERR_BAD_REQUEST', 400, 'Invalid app name.');
  return value;
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
  const clientIp = normaliseClientIp(req.ip);
  const assertion = config.assertion && config.jwt && deps.now ? { config: config.assertion, jwt: config.jwt, now: deps.now } : null;
  const app = assertion === null ? '' : requestedApp(req);
  if (assertion !== null && cookie.status === 'ok') {
    const nowSeconds = Math.floor(assertion.now() / 1000);
    const claims = liveBoundClaims(cookie.value, clientIp, { session: config.session, jwt: assertion.jwt }, nowSeconds);
    if (claims !== null) {
      // The session cookie's own lifetime: until the session's absolute end, counted from sign-in.
      const maxAgeSeconds = config.sessionLifetimes ? Math.max(claims.iat + config.sessionLifetimes.maxSeconds - nowSeconds, 0) : 0;
      res.setHeader(ASSERTION_COOKIE_HEADER, assertionCookieLine(assertion.config, cookie.value, claims, app, nowSeconds, { secure: config.session.cookieSecure, maxAgeSeconds }));
      return { ok: true, token: cookie.value, claims, maxAgeSeconds };
    }
  }
  const result = await deps.renew({
    token: cookie.status === 'ok' ? cookie.value : undefined,
    clientIp,
    requestId: localsOf(res).requestId,
  });
  if (result.ok) {
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, result.token, result.maxAgeSeconds));
    if (assertion !== null) {
      // Host-only, whatever SESSION_COOKIE_DOMAIN says: each host's apps get assertions of their own.
      const nowSeconds = Math.floor(assertion.now() / 1000);
      res.setHeader(ASSERTION_COOKIE_HEADER, assertionCookieLine(assertion.config, result.token, result.claims, app, nowSeconds, { secure: config.session.cookieSecure, maxAgeSeconds: result.maxAgeSeconds }));
    }
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
