/**
 * GET /auth/tableau/embed-token: the Tableau Connected App JWT (services/tableau-connected-app.ts)
 * for the signed-in user, which a page behind the gateway hands to Tableau's Embedding API v3
 * (`<tableau-viz src="..." token="...">`) so the user sees the view without Tableau's sign-in.
 * nginx proxies this path without the gate (snippets/gate-server.conf); the session cookie is
 * verified here as the gate does.
 */
import { Router, type Request } from 'express';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { AuthConfig } from '../config.js';
import { errorSummary } from '../logger.js';
import type { AuthMetrics } from '../metrics.js';
import { expectedOrigins } from '../security/request-origin.js';
import type { RenewalService } from '../services/renewal.js';
import type { ServerSessions } from '../services/server-sessions.js';
import { mintTableauEmbedToken } from '../services/tableau-connected-app.js';
import { localsOf, verifiedSessionOf } from './context.js';
import { answerRenewalRefused, renewRequestCookie } from './renew.js';

export const TABLEAU_EMBED_TOKEN_PATH = '/auth/tableau/embed-token';

/** Tokens one session may fetch per window: a dashboard page loads a few views, not hundreds. */
export const TABLEAU_EMBED_TOKEN_RATE_LIMIT = { points: 30, durationSeconds: 60 } as const;

export interface TableauEmbedRouteDeps {
  config: AuthConfig;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  sessions: Pick<ServerSessions, 'state'>;
  renew: RenewalService;
  metrics: Pick<AuthMetrics, 'tableauEmbedToken'>;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Why a request for a token is not the page's own script asking, or null. A custom header
 * (X-Requested-With) cannot be sent cross-origin without a CORS preflight, which this service never
 * grants, so a cross-site page, form or image cannot make the browser fetch a token with the
 * user's cookie; Fetch Metadata and Origin refuse the rest. Absent Sec-Fetch-Site and Origin
 * (non-browser clients) are accepted: they hold the cookie themselves.
 */
export function embedRequestProblem(req: Pick<Request, 'headers' | 'protocol'>, publicBaseUrl: string | null): 'header-missing' | 'cross-site' | 'origin-mismatch' | null {
  const requestedWith = single(req.headers['x-requested-with']);
  if (requestedWith === undefined || requestedWith.trim() === '') return 'header-missing';
  const site = single(req.headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'cross-site';
  const origin = single(req.headers.origin);
  if (origin !== undefined && !expectedOrigins(req.protocol, req.headers, publicBaseUrl).includes(origin.toLowerCase())) return 'origin-mismatch';
  return null;
}

/**
 * Answers JSON, never cached (Cache-Control: no-store):
 * 200 `{token, expiresAt, username}` for a live session; 404 `not-configured` without a connected
 * app; 403 `forbidden` with reason `header-missing`, `cross-site` or `origin-mismatch` (embedRequestProblem);
 * 401 `unauthenticated` without a valid session or when its server-side session ended (an expired
 * token of a live session is renewed first, as /auth/about does); 403 `tableau-username-missing`
 * when the session lacks the claim TABLEAU_CONNECTED_APP_USERNAME_CLAIM names; 429 with Retry-After
 * beyond TABLEAU_EMBED_TOKEN_RATE_LIMIT per session; 503 `store-unavailable`.
 * Logs `tableau_embed_token` (user, Tableau username, jti, expiry) and never the token.
 */
export function createTableauEmbedRouter(deps: TableauEmbedRouteDeps): Router {
  const { config, logger } = deps;
  const router = Router();
  const limiter = new RateLimiterMemory({ keyPrefix: 'tableau-embed', points: TABLEAU_EMBED_TOKEN_RATE_LIMIT.points, duration: TABLEAU_EMBED_TOKEN_RATE_LIMIT.durationSeconds });

  router.get(TABLEAU_EMBED_TOKEN_PATH, async (req, res) => {
    const { requestId } = localsOf(res);
    res.setHeader('Cache-Control', 'no-store');
    const app = config.tableauConnectedApp;
    if (app === null) {
      res.status(404).json({ error: 'not-configured' });
      return;
    }
    const refuse = (status: number, body: Record<string, unknown>, reason: string, user?: unknown) => {
      deps.metrics.tableauEmbedToken(reason);
      logger.info({ event: 'tableau_embed_token_refused', src: 'tableau-connected-app', reason, user, request_id: requestId });
      res.status(status).json(body);
    };
    const problem = embedRequestProblem(req, config.publicBaseUrl);
    if (problem !== null) {
      refuse(403, { error: 'forbidden', reason: problem }, problem);
      return;
    }
    let claims = verifiedSessionOf(req, config, deps.now());
    if (claims === null) {
      const renewed = await renewRequestCookie(req, res, { config, renew: deps.renew });
      if (!renewed.ok) {
        deps.metrics.tableauEmbedToken('unauthenticated');
        answerRenewalRefused(res, renewed);
        return;
      }
      claims = renewed.claims as unknown as Record<string, unknown>;
    }
    const sid = String(claims.sid);
    let state;
    try {
      state = await deps.sessions.state(sid, deps.now());
    } catch (err) {
      logger.error({ event: 'auth_error', reason: 'store-unavailable', path: TABLEAU_EMBED_TOKEN_PATH, request_id: requestId, err: errorSummary(err) });
      deps.metrics.tableauEmbedToken('store-unavailable');
      res.status(503).json({ error: 'store-unavailable' });
      return;
    }
    if (state !== 'live') {
      refuse(401, { error: 'unauthenticated', reason: 'session-ended', login: '/login' }, 'session-ended', claims.username);
      return;
    }
    try {
      await limiter.consume(sid);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.msBeforeNext / 1000))));
      refuse(429, { error: 'too-many-requests' }, 'rate-limited', claims.username);
      return;
    }
    const minted = mintTableauEmbedToken(app, claims, Math.floor(deps.now() / 1000));
    if (!minted.ok) {
      refuse(403, { error: 'forbidden', reason: minted.reason }, minted.reason, claims.username);
      return;
    }
    deps.metrics.tableauEmbedToken('issued');
    logger.info({
      event: 'tableau_embed_token',
      src: 'tableau-connected-app',
      user: claims.username,
      tableau_user: minted.sub,
      jti: minted.jti,
      expires_at: minted.expiresAt,
      request_id: requestId,
    });
    res.status(200).json({ token: minted.token, expiresAt: minted.expiresAt, username: minted.sub });
  });

  return router;
}
