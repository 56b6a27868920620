import express, { type Request, type Response, Router } from 'express';
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { CSRF_COOKIE_NAME, maxSessionAgeSeconds, type AuthConfig } from '../config.js';
import { AppError } from '../errors.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { cookieNamePrefix, cookieSize, MAX_COOKIE_BYTES, serializeCookie, serializeSessionCookie } from '../security/cookies.js';
import type { CsrfProtection } from '../security/csrf.js';
import { checkLoginOrigin, expectedOrigins } from '../security/request-origin.js';
import type { LoginService } from '../services/login.js';
import { signOutReplacedTableauSession } from '../services/tableau-token.js';
import type { OidcService } from '../services/oidc.js';
import type { RenewalService } from '../services/renewal.js';
import type { SsoHandoff } from '../services/sso-handoff.js';
import { renderLoginPage } from '../views/login-page.js';
import { localsOf } from './context.js';
import { hereOriginOf, relativeOnOwnOrigin, returnTargetOf, sessionForHandoff, signInHostLocation } from './sso.js';

export const GENERIC_FAILURE_MESSAGE = 'Invalid username or password.';
export const INVALID_INPUT_MESSAGE = 'Enter your username (up to 64 characters) and your password.';
export const BAD_REQUEST_MESSAGE = 'The request could not be read. Please start again.';
export const CSRF_FAILURE_MESSAGE = 'This sign-in form has expired or was sent from another site. Please start again.';

/** For a user whose session would not fit in a browser cookie (mostly: very many groups). */
export function sessionTooLargeMessage(groups: number): string {
  return (
    `Your account is in too many groups (${groups}) for this gateway's sign-in cookie, so your browser would not keep it. ` +
    'Trying again will not help: please tell your administrator.'
  );
}

const MAX_USERNAME_LENGTH = 64;
const MAX_PASSWORD_LENGTH = 1024;

export interface LoginRouteDeps {
  config: AuthConfig;
  csrf: CsrfProtection;
  loginService: LoginService;
  logger: Logger;
  /** Adds "Sign in with …" to the page; absent/null when OIDC is off. */
  oidc?: OidcService | null;
  /** Single sign-on across hosts (APP_ORIGINS); with `renew` and `now` for a signed-in browser's expired token. */
  sso: { handoff: SsoHandoff; renew: RenewalService; now: () => number };
}

function field(body: unknown, name: string): unknown {
  if (typeof body !== 'object' || body === null || !Object.prototype.hasOwnProperty.call(body, name)) return undefined;
  return (body as Record<string, unknown>)[name];
}

function isLengthBetween(value: unknown, min: number, max: number): value is string {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

/** GET/POST /login. Thin: parse, call the login service, render. */
export function createLoginRouter(deps: LoginRouteDeps): Router {
  const { config, csrf, loginService, logger } = deps;
  const router = Router();
  const csrfCookieName = cookieNamePrefix(config.publicBaseUrl) + CSRF_COOKIE_NAME;
  // Two short fields and two hidden ones; anything bigger is not our form.
  const parseForm = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  /** The CSRF cookie value of this request, if well-formed; duplicates count as missing. */
  function csrfCookieOf(req: Request): string | undefined {
    const cookie = readCookie(req.headers.cookie, csrfCookieName);
    return cookie.status === 'ok' && csrf.isCookieValue(cookie.value) ? cookie.value : undefined;
  }

  function renderForm(res: Response, status: number, opts: { cookieValue: string; returnPath: string; error?: string; username?: string; signedOut?: boolean }): void {
    res
      .status(status)
      .type('html')
      .send(
        renderLoginPage({
          brandName: config.brandName,
          theme: config.pageTheme,
          signedOut: opts.signedOut,
          returnPath: opts.returnPath,
          csrfToken: csrf.tokenFor(opts.cookieValue),
          error: opts.error,
          username: opts.username,
          passwordForm: config.loginMethods.password,
          oidc: deps.oidc ? { href: `/login/oidc?rd=${encodeURIComponent(opts.returnPath)}`, displayName: deps.oidc.displayName } : undefined,
        }),
      );
  }

  router.get('/login', async (req, res) => {
    const here = hereOriginOf(req);
    const target = relativeOnOwnOrigin(returnTargetOf(req.query.rd, config), here);
    // An app host signs in on the sign-in host, which hands the session back (routes/sso.ts).
    const away = signInHostLocation(config, here, target);
    if (away !== null) {
      res.status(302).setHeader('Location', away);
      res.end();
      return;
    }
    // Already signed in here, on the way to another app host: hand the session over at once.
    if (target.charCodeAt(0) !== 0x2f) {
      const claims = await sessionForHandoff(req, res, { config, renew: deps.sso.renew, now: deps.sso.now });
      if (claims !== null) {
        const location = await deps.sso.handoff.locationFor(target, claims, { hereOrigin: here, host: req.headers.host, clientIp: normaliseClientIp(req.ip), requestId: localsOf(res).requestId });
        res.status(302).setHeader('Location', location);
        res.end();
        return;
      }
    }
    const returnPath = target;
    let cookieValue = csrfCookieOf(req);
    if (cookieValue === undefined) {
      cookieValue = csrf.newCookieValue();
      res.append('Set-Cookie', serializeCookie(csrfCookieName, cookieValue, { sameSite: 'Strict', secure: config.session.cookieSecure }));
    }
    renderForm(res, 200, { cookieValue, returnPath, signedOut: req.query.signed_out === '1' });
  });

  // LOGIN_METHODS=oidc: there is no password form, so POST /login falls through to the 404 page.
  if (!config.loginMethods.password) return router;

  router.post('/login', parseForm, async (req, res) => {
    const locals = localsOf(res);
    // Only a urlencoded body is parsed; anything else (JSON, multipart, none) is not our form.
    if (req.body === undefined) {
      throw new AppError('ERR_BAD_REQUEST', 400, BAD_REQUEST_MESSAGE);
    }
    const here = hereOriginOf(req);
    const returnPath = relativeOnOwnOrigin(returnTargetOf(field(req.body, 'rd'), config), here);
    locals.returnPath = returnPath;

    const origin = checkLoginOrigin(req.headers, expectedOrigins(req.protocol, req.headers, config.publicBaseUrl));
    const cookieValue = csrfCookieOf(req);
    if (!origin.ok || cookieValue === undefined || !csrf.verify(cookieValue, field(req.body, 'csrf'))) {
      const reason = !origin.ok ? origin.reason : cookieValue === undefined ? 'csrf-cookie-missing' : 'csrf-token-invalid';
      logger.warn({ event: 'csrf_rejected', path: '/login', reason, request_id: locals.requestId });
      throw new AppError('ERR_CSRF', 403, CSRF_FAILURE_MESSAGE);
    }

    const username = field(req.body, 'username');
    const password = field(req.body, 'password');
    if (!isLengthBetween(username, 1, MAX_USERNAME_LENGTH) || !isLengthBetween(password, 1, MAX_PASSWORD_LENGTH)) {
      renderForm(res, 400, {
        cookieValue,
        returnPath,
        error: INVALID_INPUT_MESSAGE,
        username: isLengthBetween(username, 1, MAX_USERNAME_LENGTH) ? username : undefined,
      });
      return;
    }

    const result = await loginService.attempt({
      username,
      password,
      ip: normaliseClientIp(req.ip),
      requestId: locals.requestId,
      userAgent: req.headers['user-agent'] ?? null,
    });
    if (result.kind === 'failure') {
      renderForm(res, 401, { cookieValue, returnPath, error: GENERIC_FAILURE_MESSAGE, username });
      return;
    }
    const bytes = cookieSize(config.session.cookieName, result.token);
    if (bytes > MAX_COOKIE_BYTES) {
      // A browser drops such a cookie without a word and the user lands on the login page again;
      // say why instead, and end what the source kept for this sign-in (a live Tableau token).
      logger.error({
        event: 'auth_error',
        user: result.claims.username,
        src: result.claims.src,
        reason: 'session-too-large',
        cookie_bytes: bytes,
        max_bytes: MAX_COOKIE_BYTES,
        groups: result.claims.groups.length,
        request_id: locals.requestId,
      });
      await result.discard();
      throw new AppError('ERR_SESSION_TOO_LARGE', 403, sessionTooLargeMessage(result.claims.groups.length));
    }
    // In the background, as at logout: Tableau never delays the sign-in.
    void signOutReplacedTableauSession(req.headers.cookie, locals.requestId, config, logger);
    res.append('Set-Cookie', serializeSessionCookie(config, req.headers.host, result.token, maxSessionAgeSeconds(config)));
    // A path (relative, validated: no Host header is involved), or an APP_ORIGINS target, reached
    // through a one-time hand-off code unless the cookie's domain already covers it.
    const location = await deps.sso.handoff.locationFor(returnPath, result.claims, { hereOrigin: here, host: req.headers.host, clientIp: normaliseClientIp(req.ip), requestId: locals.requestId });
    res.status(302).setHeader('Location', location);
    res.end();
  });

  return router;
}
