import { Router } from 'express';
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { maxSessionAgeSeconds, type AuthConfig } from '../config.js';
import { isAppError } from '../errors.js';
import { secondsSince, type AuthMetrics } from '../metrics.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { cookieNamePrefix, serializeCookie, serializeSessionCookie } from '../security/cookies.js';
import type { OidcService } from '../services/oidc.js';
import { decideFrontChannelLogout } from '../services/oidc-frontchannel.js';
import type { ServerSessions } from '../services/server-sessions.js';
import { OIDC_STATE_COOKIE, OIDC_STATE_TTL_SECONDS } from '../services/oidc-state.js';
import { signOutReplacedTableauSession } from '../services/tableau-token.js';
import { renderMessagePage } from '../views/message-page.js';
import type { SsoHandoff } from '../services/sso-handoff.js';
import { localsOf, verifiedSessionOf } from './context.js';
import { hereOriginOf, relativeOnOwnOrigin, returnTargetOf } from './sso.js';

export interface OidcRouteDeps {
  config: AuthConfig;
  oidc: OidcService | null;
  logger: Logger;
  /** Milliseconds since the epoch (session expiry in front-channel logout). */
  now: () => number;
  sessions: Pick<ServerSessions, 'open' | 'endByIdpSid' | 'recordEvent'>;
  /** Counts each callback as a sign-in of source oidc/azure. */
  metrics?: Pick<AuthMetrics, 'login'>;
  /** Sends the browser on to an APP_ORIGINS target after sign-in (a hand-off code). */
  handoff: Pick<SsoHandoff, 'locationFor'>;
}

export const FRONTCHANNEL_REFUSED_MESSAGE = 'This sign-out request does not match your current session, so you are still signed in.';

/**
 * GET /login/oidc (start), GET {OIDC_REDIRECT_PATH} (callback) and GET /logout/frontchannel, all
 * only when OIDC is configured (otherwise they are 404). Thin: cookies in and out, the flows are
 * services/oidc.ts and services/oidc-frontchannel.ts.
 */
export function createOidcRouter(deps: OidcRouteDeps): Router {
  const { config, oidc, logger } = deps;
  const router = Router();
  if (oidc === null) return router;
  const secure = config.session.cookieSecure;
  // The cookie's name; the AES-GCM binding of its value (services/oidc-state.ts) keeps the bare name.
  const stateCookieName = cookieNamePrefix(config.publicBaseUrl) + OIDC_STATE_COOKIE;
  // Lax, not Strict: the callback is a top-level navigation coming from the provider's site.
  const clearState = serializeCookie(stateCookieName, '', { sameSite: 'Lax', maxAge: 0, secure });

  router.get('/logout/frontchannel', async (req, res) => {
    const { requestId } = localsOf(res);
    const session = verifiedSessionOf(req, config, deps.now());
    const decision = decideFrontChannelLogout({ iss: req.query.iss, sid: req.query.sid, issuer: oidc.issuer, flavour: oidc.flavour, session });
    const user = typeof session?.username === 'string' ? session.username : undefined;
    // The provider names its session (`sid`); every gateway session opened under it ends on the
    // server, including those whose cookie this request does not carry (a cross-site iframe often
    // carries none). A mismatched or missing `iss` names nothing.
    const refusedOutright = decision.kind === 'refused' && (decision.reason === 'sid-missing' || decision.reason === 'iss-missing' || decision.reason === 'iss-mismatch');
    if (!refusedOutright && typeof req.query.sid === 'string') {
      const ended = await deps.sessions.endByIdpSid(oidc.flavour, req.query.sid, { event: 'logout', reason: 'frontchannel', requestId, clientIp: normaliseClientIp(req.ip) });
      logger.info({ event: 'frontchannel_revoked', src: oidc.flavour, sessions: ended, request_id: requestId });
    }
    if (decision.kind === 'refused') {
      logger.warn({ event: 'logout_refused', path: '/logout/frontchannel', reason: decision.reason, user, request_id: requestId });
      res.status(400).type('html').send(
        renderMessagePage({ brandName: config.brandName, theme: config.pageTheme, title: 'Sign-out refused', message: FRONTCHANNEL_REFUSED_MESSAGE, link: { href: '/', text: 'Continue' }, requestId }),
      );
      return;
    }
    if (decision.kind === 'no-session') {
      res.status(200).type('html').send(
        renderMessagePage({ brandName: config.brandName, theme: config.pageTheme, title: 'Not signed in', message: 'You are not signed in to this gateway.', link: { href: '/login', text: 'Sign in' } }),
      );
      return;
    }
    logger.info({ event: 'logout', reason: 'frontchannel', user, sid: session?.sid, request_id: requestId });
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, '', 0));
    res.status(200).type('html').send(
      renderMessagePage({ brandName: config.brandName, theme: config.pageTheme, title: 'Signed out', message: 'You have been signed out of this gateway.', link: { href: '/login', text: 'Sign in again' } }),
    );
  });

  router.get('/login/oidc', async (req, res) => {
    // A path, or an APP_ORIGINS URL (kept in the sealed state cookie until the callback).
    const returnPath = relativeOnOwnOrigin(returnTargetOf(req.query.rd, config), hereOriginOf(req));
    localsOf(res).returnPath = returnPath;
    const started = await oidc.start(returnPath, localsOf(res).requestId);
    res.append('Set-Cookie', serializeCookie(stateCookieName, started.stateCookie, { sameSite: 'Lax', maxAge: OIDC_STATE_TTL_SECONDS, secure }));
    res.status(302).setHeader('Location', started.location);
    res.end();
  });

  router.get(oidc.redirectPath, async (req, res) => {
    const locals = localsOf(res);
    const cookie = readCookie(req.headers.cookie, stateCookieName);
    // Cleared whatever happens: a replayed callback then finds no state.
    res.append('Set-Cookie', clearState);
    const started = process.hrtime.bigint();
    let result: Awaited<ReturnType<OidcService['finish']>>;
    try {
      result = await oidc.finish({
        pathAndQuery: req.originalUrl,
        stateCookie: cookie.status === 'ok' ? cookie.value : undefined,
        ip: normaliseClientIp(req.ip),
        requestId: locals.requestId,
      });
    } catch (err) {
      // A refused sign-in (401/403) is audited; the log line with the same request id names the
      // exact reason (state-mismatch, nonce-mismatch, too-many-groups, ...).
      if (isAppError(err) && (err.status === 401 || err.status === 403)) {
        await deps.sessions.recordEvent({ event: 'login_failure', source: oidc.flavour, clientIp: normaliseClientIp(req.ip), requestId: locals.requestId, reason: err.status === 403 ? 'oidc-refused' : 'oidc-rejected' });
      }
      const refused = isAppError(err) && err.status >= 400 && err.status < 500;
      deps.metrics?.login(oidc.flavour, refused ? 'failure' : 'error', secondsSince(started));
      throw err;
    }
    locals.returnPath = result.returnPath;
    // Before the cookie: a failure here is a 503 and no session (nothing to undo at the provider).
    await deps.sessions.open(result.claims, { clientIp: normaliseClientIp(req.ip), userAgent: req.headers['user-agent'] ?? null, requestId: locals.requestId, groups: result.groups, idpRefresh: result.idpRefresh });
    // The session this one replaces may hold a Tableau token; end it (in the background).
    void signOutReplacedTableauSession(req.headers.cookie, locals.requestId, config, logger);
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, result.token, maxSessionAgeSeconds(config)));
    deps.metrics?.login(oidc.flavour, 'success', secondsSince(started));
    const location = await deps.handoff.locationFor(result.returnPath, result.claims, { hereOrigin: hereOriginOf(req), host: req.headers.host, clientIp: normaliseClientIp(req.ip), requestId: locals.requestId });
    res.status(302).setHeader('Location', location);
    res.end();
  });

  return router;
}
