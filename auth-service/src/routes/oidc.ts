import { Router } from 'express';
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { safeReturnPath } from '../../../njs/src/core/return-url.js';
import type { AuthConfig } from '../config.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { serializeCookie } from '../security/cookies.js';
import type { OidcService } from '../services/oidc.js';
import { OIDC_STATE_COOKIE, OIDC_STATE_TTL_SECONDS } from '../services/oidc-state.js';
import { signOutReplacedTableauSession } from '../services/tableau-token.js';
import { renderMessagePage } from '../views/message-page.js';
import { localsOf } from './context.js';

export interface OidcRouteDeps {
  config: AuthConfig;
  oidc: OidcService | null;
  logger: Logger;
}

/**
 * GET /login/oidc (start), GET {OIDC_REDIRECT_PATH} (callback) and GET /logout/frontchannel.
 * Thin: cookies in and out, the flow itself is services/oidc.ts.
 */
export function createOidcRouter(deps: OidcRouteDeps): Router {
  const { config, oidc, logger } = deps;
  const router = Router();
  const secure = config.session.cookieSecure;
  // Lax, not Strict: the callback is a top-level navigation coming from the provider's site.
  const clearState = serializeCookie(OIDC_STATE_COOKIE, '', { sameSite: 'Lax', maxAge: 0, secure });

  router.get('/logout/frontchannel', (req, res) => {
    logger.info({ event: 'logout', reason: 'frontchannel', request_id: localsOf(res).requestId });
    res.append('Set-Cookie', serializeCookie(config.session.cookieName, '', { sameSite: 'Lax', maxAge: 0, secure }));
    res.status(200).type('html').send(
      renderMessagePage({ brandName: config.brandName, title: 'Signed out', message: 'You have been signed out of this gateway.', link: { href: '/login', text: 'Sign in again' } }),
    );
  });

  if (oidc === null) return router;

  router.get('/login/oidc', async (req, res) => {
    const returnPath = safeReturnPath(req.query.rd);
    localsOf(res).returnPath = returnPath;
    const started = await oidc.start(returnPath, localsOf(res).requestId);
    res.append('Set-Cookie', serializeCookie(OIDC_STATE_COOKIE, started.stateCookie, { sameSite: 'Lax', maxAge: OIDC_STATE_TTL_SECONDS, secure }));
    res.status(302).setHeader('Location', started.location);
    res.end();
  });

  router.get(oidc.redirectPath, async (req, res) => {
    const locals = localsOf(res);
    const cookie = readCookie(req.headers.cookie, OIDC_STATE_COOKIE);
    // Cleared whatever happens: a replayed callback then finds no state.
    res.append('Set-Cookie', clearState);
    const result = await oidc.finish({
      pathAndQuery: req.originalUrl,
      stateCookie: cookie.status === 'ok' ? cookie.value : undefined,
      ip: normaliseClientIp(req.ip),
      requestId: locals.requestId,
    });
    locals.returnPath = result.returnPath;
    // The session this one replaces may hold a Tableau token; end it (in the background).
    void signOutReplacedTableauSession(req.headers.cookie, locals.requestId, config, logger);
    res.append('Set-Cookie', serializeCookie(config.session.cookieName, result.token, { sameSite: 'Lax', maxAge: config.session.ttlSeconds, secure }));
    res.status(302).setHeader('Location', result.returnPath);
    res.end();
  });

  return router;
}
