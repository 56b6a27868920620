/**
 * GET /auth/about: what the front end needs to talk to Tableau through the gateway's /api/:
 * Tableau's serverinfo (REST API version, product version), the site id and the user id. The
 * session cookie is verified here as the gate does (nginx only proxies this path).
 */
import { Router } from 'express';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config.js';
import { errorSummary } from '../logger.js';
import type { ServerSessions } from '../services/server-sessions.js';
import { fetchCurrentTableauSession, fetchTableauServerInfo, openTableauCredentials, TABLEAU_TOKEN_CLAIM } from '../services/tableau-token.js';
import { localsOf, verifiedSessionOf } from './context.js';
import { answerRenewalRefused, renewRequestCookie } from './renew.js';
import type { RenewalService } from '../services/renewal.js';

export interface AboutRouteDeps {
  config: AuthConfig;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  fetch?: typeof globalThis.fetch;
  sessions: Pick<ServerSessions, 'state'>;
  /** Renews an expired session token (services/renewal.ts). */
  renew: RenewalService;
}

/**
 * An expired session token is renewed first (renewRequestCookie: the new cookie, or a refusal's 401
 * with its reason and a clearing cookie, or 503). Then answers JSON, never cached: 200
 * `{serverInfo, siteId, userId}` for a Tableau session whose token
 * Tableau still accepts (checked with Get Current Server Session under the user's own token);
 * 401 `unauthenticated` without a valid session, when its server-side session was revoked, has
 * expired or was never stored (reason `session-ended`), when Tableau refuses the token, or names another
 * user for it (so the front end signs in again); 503 `store-unavailable` when the session store
 * cannot be asked; 404 `not-a-tableau-session` for other sessions or
 * when Tableau is off; 503 `tableau-unavailable` when Tableau cannot be asked, is slower than
 * TABLEAU_TIMEOUT_MS or answers anything else.
 */
export function createAboutRouter(deps: AboutRouteDeps): Router {
  const { config, logger } = deps;
  const router = Router();
  const secrets = [config.jwt.secret, ...config.jwt.previousSecrets];

  router.get('/auth/about', async (req, res) => {
    const { requestId } = localsOf(res);
    res.setHeader('Cache-Control', 'no-store');
    let claims = verifiedSessionOf(req, config, deps.now());
    if (claims === null) {
      // nginx proxies this path without the gate, so an expired token of a live session is renewed
      // here, as the gate would renew it (the new cookie comes with the answer).
      const renewed = await renewRequestCookie(req, res, { config, renew: deps.renew });
      if (!renewed.ok) {
        answerRenewalRefused(res, renewed);
        return;
      }
      claims = renewed.claims as unknown as Record<string, unknown>;
    }
    let state;
    try {
      state = await deps.sessions.state(String(claims.sid), deps.now());
    } catch (err) {
      logger.error({ event: 'auth_error', reason: 'store-unavailable', path: '/auth/about', request_id: requestId, err: errorSummary(err) });
      res.status(503).json({ error: 'store-unavailable' });
      return;
    }
    if (state !== 'live') {
      res.status(401).json({ error: 'unauthenticated', reason: 'session-ended', login: '/login' });
      return;
    }
    const creds = config.tableau === null ? null : openTableauCredentials(claims[TABLEAU_TOKEN_CLAIM], secrets);
    if (config.tableau === null || creds === null) {
      res.status(404).json({ error: 'not-a-tableau-session' });
      return;
    }
    if (Math.floor(deps.now() / 1000) > creds.expiresAt) {
      res.status(401).json({ error: 'unauthenticated', reason: 'tableau-session-expired', login: '/login' });
      return;
    }
    const call = { url: config.tableau.url, timeoutMs: config.tableau.timeoutMs, fetch: deps.fetch };
    const unavailable = (reason: string) => {
      logger.warn({ event: 'tableau_unavailable', src: 'tableau', reason, request_id: requestId }, 'Tableau could not be asked');
      res.status(503).json({ error: 'tableau-unavailable' });
    };
    // serverinfo needs no token, so only a call made with the user's own token can tell whether
    // Tableau still accepts it (it ends sessions on its own timeout, restart or sign-out).
    let session: { status: number; userId: string | null };
    let info: { status: number; serverInfo: unknown };
    try {
      [session, info] = await Promise.all([fetchCurrentTableauSession(creds, call), fetchTableauServerInfo(creds.apiVersion, call)]);
    } catch (err) {
      unavailable(err instanceof Error ? err.name : 'error');
      return;
    }
    // A 200 naming another user means the token is not this session's; a 200 without a readable user
    // still proves the token is live, so it does not send the user round the sign-in loop.
    if (session.status === 401 || (session.status === 200 && session.userId !== null && session.userId !== creds.userId)) {
      logger.info({ event: 'tableau_session_refused', src: 'tableau', user: claims.username, status: session.status, request_id: requestId });
      res.status(401).json({ error: 'unauthenticated', reason: 'tableau-session-expired', login: '/login' });
      return;
    }
    if (session.status !== 200) {
      unavailable(`sessions/current answered ${session.status}`);
      return;
    }
    if (info.status !== 200 || info.serverInfo === null) {
      unavailable(`serverinfo answered ${info.status}`);
      return;
    }
    res.status(200).json({ serverInfo: info.serverInfo, siteId: creds.siteId, userId: creds.userId });
  });

  return router;
}
