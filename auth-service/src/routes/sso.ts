import { type Request, type Response, Router } from 'express';
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { safeReturnPath, safeReturnTarget, splitReturnTarget } from '../../../njs/src/core/return-url.js';
import type { AuthConfig } from '../config.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { serializeSessionCookie } from '../security/cookies.js';
import { expectedOrigin } from '../security/request-origin.js';
import type { SsoHandoff } from '../services/sso-handoff.js';
import type { RenewalService } from '../services/renewal.js';
import { renderMessagePage } from '../views/message-page.js';
import { localsOf, loginHref, verifiedSessionOf } from './context.js';
import { renewRequestCookie } from './renew.js';

export const HANDOFF_REFUSED_MESSAGE = 'This sign-in link has expired or was already used. Sign in again to continue.';
export const LOGOUT_CHAIN_REFUSED_MESSAGE = 'This sign-out link has expired or is not valid here. Sign out again from the application.';

/** `scheme://host[:port]` the request was addressed to (X-Forwarded-Proto and Host from nginx). */
export function hereOriginOf(req: Request): string | undefined {
  return expectedOrigin(req.protocol, req.headers);
}

/** The request's `rd` as a safe return target: a same-origin path, or a URL on one of APP_ORIGINS. */
export function returnTargetOf(rd: unknown, config: Pick<AuthConfig, 'sso'>): string {
  return safeReturnTarget(rd, config.sso.appOrigins);
}

/**
 * On an app host (a request addressed to one of APP_ORIGINS that is not PUBLIC_BASE_URL): the
 * sign-in host's /login with `rd` made absolute on this host, so the user signs in once, there.
 * Null on the sign-in host and on hosts that are not listed (they keep their own login page).
 */
export function signInHostLocation(config: Pick<AuthConfig, 'sso' | 'publicBaseUrl'>, hereOrigin: string | undefined, target: string): string | null {
  if (config.publicBaseUrl === null || hereOrigin === undefined || hereOrigin === config.publicBaseUrl || !config.sso.appOrigins.includes(hereOrigin)) return null;
  const absolute = target.charCodeAt(0) === 0x2f ? hereOrigin + target : target;
  return `${config.publicBaseUrl}/login?rd=${encodeURIComponent(absolute)}`;
}

/** `target` relative when it is on `hereOrigin`, unchanged otherwise. */
export function relativeOnOwnOrigin(target: string, hereOrigin: string | undefined): string {
  const split = splitReturnTarget(target);
  return split.origin !== null && split.origin === hereOrigin ? split.path : target;
}

/**
 * The signed-in session of this request for a hand-off: the verified cookie, or, when its token
 * has expired, a renewal (which also refreshes this host's cookie). Null when there is none.
 */
export async function sessionForHandoff(req: Request, res: Response, deps: { config: AuthConfig; renew: RenewalService; now: () => number }): Promise<Record<string, unknown> | null> {
  const verified = verifiedSessionOf(req, deps.config, deps.now());
  if (verified !== null) return verified;
  const cookie = readCookie(req.headers.cookie, deps.config.session.cookieName);
  if (cookie.status !== 'ok') return null;
  const renewed = await renewRequestCookie(req, res, { config: deps.config, renew: deps.renew });
  return renewed.ok ? renewed.claims : null;
}

export interface SsoRouteDeps {
  config: AuthConfig;
  handoff: SsoHandoff;
  logger: Logger;
}

/** GET /login/handoff (redeem a code on an app host) and GET /logout/handoff (one hop of the logout chain). */
export function createSsoRouter(deps: SsoRouteDeps): Router {
  const { config, handoff, logger } = deps;
  const router = Router();

  router.get('/login/handoff', async (req, res) => {
    const { requestId } = localsOf(res);
    const rd = safeReturnPath(req.query.rd);
    const result = await handoff.redeem({ code: req.query.code, hereOrigin: hereOriginOf(req), clientIp: normaliseClientIp(req.ip), requestId });
    if (!result.ok) {
      res.status(403).type('html').send(
        renderMessagePage({ brandName: config.brandName, theme: config.pageTheme, title: 'Sign-in link not valid', message: HANDOFF_REFUSED_MESSAGE, link: { href: loginHref(rd), text: 'Sign in' }, requestId }),
      );
      return;
    }
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, result.token, result.maxAgeSeconds));
    res.status(302).setHeader('Location', rd);
    res.end();
  });

  router.get('/logout/handoff', (req, res) => {
    const { requestId } = localsOf(res);
    const next = handoff.followLogoutChain(req.query.chain, hereOriginOf(req));
    if (next === null) {
      logger.warn({ event: 'logout_refused', path: '/logout/handoff', reason: 'chain-invalid', request_id: requestId });
      res.status(400).type('html').send(
        renderMessagePage({ brandName: config.brandName, theme: config.pageTheme, title: 'Sign-out link not valid', message: LOGOUT_CHAIN_REFUSED_MESSAGE, link: { href: '/', text: 'Continue' }, requestId }),
      );
      return;
    }
    logger.info({ event: 'logout', reason: 'handoff-chain', origin: hereOriginOf(req), request_id: requestId });
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, '', 0));
    res.status(303).setHeader('Location', next);
    res.end();
  });

  return router;
}
