import { Router } from 'express';
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import type { AuthConfig } from '../config.js';
import { AppError } from '../errors.js';
import { serializeSessionCookie } from '../security/cookies.js';
import { clearAssertionCookies } from '../services/assertion.js';
import { checkLogoutOrigin, expectedOrigins } from '../security/request-origin.js';
import { signOutTableauSession, tableauLogoutDeps } from '../services/tableau-token.js';
import { verifySignedClaims } from '../services/session-token.js';
import type { OidcService } from '../services/oidc.js';
import type { ServerSessions } from '../services/server-sessions.js';
import type { SsoHandoff } from '../services/sso-handoff.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { renderLogoutPage } from '../views/logout-page.js';
import { localsOf } from './context.js';
import { hereOriginOf } from './sso.js';

/** Where POST /logout sends the browser (OIDC sessions with an end-session page: there, then back to /login). */
export const SIGNED_OUT_LOGIN_PATH = '/login?signed_out=1';

export const LOGOUT_REFUSED_MESSAGE = 'Sign-out was refused because the request came from another site.';

export interface LogoutRouteDeps {
  config: AuthConfig;
  logger: Logger;
  /** RP-initiated logout at the provider for OIDC/Azure sessions; absent/null when OIDC is off. */
  oidc?: OidcService | null;
  sessions: Pick<ServerSessions, 'end'>;
  /** The other hosts holding a cookie of the session (hand-offs), cleared by a chain of redirects. */
  handoff: Pick<SsoHandoff, 'logoutHops' | 'startLogoutChain'>;
}

/** user and sid of the session being ended, for the log only; expired tokens are fine here. */
function describeSession(token: string | undefined, secrets: string[]): { user?: string; sid?: string; src?: string } {
  if (token === undefined) return {};
  // Not signed with any key (or not a token at all): logged without a user.
  const claims = verifySignedClaims(token, secrets, { ignoreExpiration: true });
  if (claims === null) return {};
  return {
    user: typeof claims.username === 'string' ? claims.username : undefined,
    sid: typeof claims.sid === 'string' ? claims.sid : undefined,
    src: typeof claims.src === 'string' ? claims.src : undefined,
  };
}

/**
 * POST /logout revokes the server-side session (with a `logout` audit event), clears the session
 * cookie and sends the browser to /login; with single sign-on, first through every other host that
 * holds a cookie of the session (GET /logout/handoff, routes/sso.ts). No CSRF token: the protected app's plain form posts here,
 * so the request's origin is checked instead.
 * Not guaranteed: the gate does not consult the server-side session yet, so a copy of the token keeps
 * passing the gate until its `exp` (see the README's Sessions section). A store that cannot be
 * reached does not stop the sign-out: the cookie is cleared and the failure is logged.
 */
export function createLogoutRouter(deps: LogoutRouteDeps): Router {
  const { config, logger } = deps;
  const router = Router();
  const secrets = [config.jwt.secret, ...config.jwt.previousSecrets];

  router.get('/logout', (_req, res) => {
    res.status(200).type('html').send(renderLogoutPage({ brandName: config.brandName, theme: config.pageTheme }));
  });

  router.post('/logout', async (req, res) => {
    const { requestId } = localsOf(res);
    const origin = checkLogoutOrigin(req.headers, expectedOrigins(req.protocol, req.headers, config.publicBaseUrl));
    if (!origin.ok) {
      logger.warn({ event: 'csrf_rejected', path: '/logout', reason: origin.reason, request_id: requestId });
      throw new AppError('ERR_CSRF', 403, LOGOUT_REFUSED_MESSAGE);
    }
    const cookie = readCookie(req.headers.cookie, config.session.cookieName);
    const session = describeSession(cookie.status === 'ok' ? cookie.value : undefined, secrets);
    logger.info({ event: 'logout', user: session.user, sid: session.sid, request_id: requestId });
    if (session.sid !== undefined) {
      await deps.sessions.end(session.sid, { event: 'logout', reason: 'logout', requestId, clientIp: normaliseClientIp(req.ip) });
    }
    // Tableau sessions kept for /api/ end too; not awaited, so Tableau never delays the sign-out.
    void signOutTableauSession(cookie.status === 'ok' ? cookie.value : undefined, requestId, tableauLogoutDeps(config, logger));
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, '', 0));
    // And this host's assertion cookies (ASSERTION_KEY_FILE): other hosts' stay until they expire,
    // bound to no session.
    if (config.assertion) for (const line of clearAssertionCookies(req.headers.cookie, config.assertion.cookieName, config.session.cookieSecure)) res.append('Set-Cookie', line);
    // The login page then says "You have been signed out" (views/login-page.ts). OIDC sessions also
    // end at the provider (RP-initiated logout), which then sends the browser back to the registered
    // post-logout URI, plain /login: changing it would break existing provider registrations.
    let location = SIGNED_OUT_LOGIN_PATH;
    if (deps.oidc && config.publicBaseUrl !== null && (session.src === 'oidc' || session.src === 'azure')) {
      location = (await deps.oidc.endSessionUrl(config.publicBaseUrl + '/login')) ?? SIGNED_OUT_LOGIN_PATH;
    }
    // Single sign-on: the hosts this session was handed to (and the sign-in host, when signing out
    // on an app host) clear their cookie in turn, then the browser lands where it would have.
    if (session.sid !== undefined) {
      const here = hereOriginOf(req);
      const hops = await deps.handoff.logoutHops(session.sid, here, requestId);
      if (hops.length > 0) {
        const done = location.charCodeAt(0) === 0x2f ? (config.publicBaseUrl ?? here ?? '') + location : location;
        location = deps.handoff.startLogoutChain(hops, done);
      }
    }
    res.status(303).setHeader('Location', location);
    res.end();
  });

  return router;
}
