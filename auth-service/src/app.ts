/**
 * The Express application: middleware, routes and the single error handler. It never listens;
 * main.ts/server.ts do, and tests drive it in-process.
 */
import crypto from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { createLocalAuthenticator } from './authenticators/local.js';
import { tableauFetch } from './authenticators/tableau.js';
import { APP_NAME } from './policy/parse-policy.js';
import type { PasswordAuthenticator } from './authenticators/types.js';
import type { AuthConfig } from './config.js';
import { AppError, isAppError } from './errors.js';
import { errorSummary, runInRequestScope } from './logger.js';
import { createMetrics, type AuthMetrics } from './metrics.js';
import type { PasswordHasher } from './passwords/index.js';
import { createHealthRouter } from './routes/health.js';
import { localsOf, loginHref } from './routes/context.js';
import { BAD_REQUEST_MESSAGE, createLoginRouter } from './routes/login.js';
import { createAboutRouter } from './routes/about.js';
import { createLogoutRouter } from './routes/logout.js';
import { createOidcRouter } from './routes/oidc.js';
import { createRenewRouter } from './routes/renew.js';
import { createRevocationsRouter } from './routes/revocations.js';
import { createTableauEmbedRouter } from './routes/tableau-embed.js';
import { createSsoRouter } from './routes/sso.js';
import { normaliseClientIp } from './security/client-ip.js';
import { createCsrfProtection } from './security/csrf.js';
import { securityHeaders } from './security/headers.js';
import { createLoginRateLimiter } from './security/login-rate-limiter.js';
import { createGroupSelectionSource, type GroupSelectionSource } from './services/group-selection-source.js';
import { createLoginService } from './services/login.js';
import type { OidcService } from './services/oidc.js';
import { createRenewalService } from './services/renewal.js';
import { createServerSessions, type ServerSessions } from './services/server-sessions.js';
import { createSourceRecheck } from './services/source-recheck.js';
import { createSsoHandoff } from './services/sso-handoff.js';
import type { AuditRepo } from './storage/audit-repo.js';
import type { HandoffsRepo } from './storage/handoffs-repo.js';
import type { SessionsRepo } from './storage/sessions-repo.js';
import type { UsersRepo } from './storage/users-repo.js';
import { renderMessagePage } from './views/message-page.js';

export interface AppDeps {
  config: AuthConfig;
  usersRepo: UsersRepo;
  hasher: PasswordHasher;
  logger: Logger;
  /** Milliseconds since the epoch; tests pass a frozen clock. */
  now: () => number;
  /** Identity sources, asked in order. Default: local users only. */
  authenticators?: PasswordAuthenticator[];
  /** False while start-up migrations have not succeeded yet. Default: always ready. */
  storeReady?: () => boolean;
  /** A trivial query for /readyz. Default: none (the migrations only). */
  pingStore?: () => Promise<void>;
  /** Where sign-ins, renewals and rate-limit hits are counted. Default: a registry nobody serves. */
  metrics?: AuthMetrics;
  /** Azure AD / OIDC sign-in (config.oidc), or null/absent when off. */
  oidc?: OidcService | null;
  /**
   * Server-side sessions and the audit trail. Absent: no session can be opened, so every sign-in
   * answers 503 (fail closed); main.ts always passes them.
   */
  storage?: { sessions: SessionsRepo; audit: AuditRepo; /** Single sign-on hand-off codes; absent: every hand-off answers 503. */ handoffs?: HandoffsRepo };
  /** Which groups sessions carry. Default: createGroupSelectionSource(config). */
  groupSelection?: GroupSelectionSource;
}

/** nginx's `$request_id` is 32 hex characters; accept similar ids, replace anything else. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The app nginx says the request came through (X-Gateway-App: its `$gate_app`, which nginx sets
 * itself after removing any client-sent one), or null for the default app. Kept only when it is an
 * app name of the compiled policy in force (`appNames`); anything else is logged and recorded as
 * null, never trusted: it only labels audit rows, so a sign-in is not refused over it.
 */
function gatewayApp(req: Request, requestId: string, logger: Logger, appNames: () => ReadonlySet<string>): string | null {
  const given = req.headers['x-gateway-app'];
  if (given === undefined || given === '') return null;
  let known = false;
  if (typeof given === 'string' && APP_NAME.test(given)) {
    try {
      known = appNames().has(given);
    } catch {
      // The compiled policy cannot be read: sign-in itself reports that; the app stays unrecorded.
    }
  }
  if (known) return given as string;
  // JSON.stringify and a cap: the value is whatever reached the service, never a secret.
  logger.warn({ event: 'gateway_app_unknown', app: JSON.stringify(given).slice(0, 80), request_id: requestId }, 'X-Gateway-App names no app of the access policy; recorded as the default app');
  return null;
}

function requestContext(logger: Logger, appNames: () => ReadonlySet<string>): RequestHandler {
  return (req, res, next) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    localsOf(res).requestId = requestId;
    const app = gatewayApp(req, requestId, logger, appNames);
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // Path only: the query string may carry a return URL with someone else's parameters.
      // Healthchecks poll every few seconds; keep them out of the info log.
      const level = (req.path === '/healthz' || req.path === '/readyz') && res.statusCode === 200 ? 'debug' : 'info';
      logger[level]({
        event: 'request',
        method: req.method,
        path: req.path,
        status: res.statusCode,
        duration_ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        request_id: requestId,
      });
    });
    // Auth events logged while handling this request carry the client address (logger.ts).
    runInRequestScope(normaliseClientIp(req.ip), next, app);
  };
}

const TITLES: Record<number, string> = {
  400: 'Request not understood',
  401: 'Sign-in failed',
  403: 'Request refused',
  404: 'Page not found',
  413: 'Request too large',
  415: 'Request not understood',
  429: 'Too many attempts',
  503: 'Sign-in unavailable',
};

/**
 * body-parser's errors (http-errors) carry a 4xx `status` and `expose: true`, and usually a `type`
 * (`entity.too.large`, …); a broken gzip body has only the status. They are the client's fault.
 */
function isBodyParserError(err: unknown): err is { status: number; type?: string } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { status?: unknown; type?: unknown; expose?: unknown };
  return typeof e.status === 'number' && e.status >= 400 && e.status < 500 && (typeof e.type === 'string' || e.expose === true);
}

function errorHandler(config: Pick<AuthConfig, 'brandName' | 'pageTheme'>, logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    const { requestId, returnPath } = localsOf(res);
    if (res.headersSent) {
      next(err);
      return;
    }
    let appError: AppError;
    if (isAppError(err)) {
      appError = err;
    } else if (isBodyParserError(err)) {
      logger.info({ event: 'bad_request', path: req.path, reason: err.type ?? `status-${err.status}`, request_id: requestId });
      appError = new AppError('ERR_BAD_REQUEST', err.status, BAD_REQUEST_MESSAGE);
    } else {
      logger.error({ event: 'internal_error', path: req.path, request_id: requestId, err: errorSummary(err), stack: err instanceof Error ? err.stack : undefined });
      appError = new AppError('ERR_INTERNAL', 500, 'Something went wrong on our side. If it keeps happening, quote the request id below.');
    }
    if (appError.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(appError.retryAfterSeconds));
    const retryable = appError.code === 'ERR_RATE_LIMITED' || appError.code === 'ERR_LOGIN_BUSY' || appError.code === 'ERR_STORE_UNAVAILABLE' || appError.code === 'ERR_IDP_UNAVAILABLE';
    const link = { href: loginHref(returnPath), text: retryable || appError.code === 'ERR_INVALID_CREDENTIALS' ? 'Back to sign-in' : 'Start again' };
    res
      .status(appError.status)
      .type('html')
      .send(
        renderMessagePage({
          brandName: config.brandName,
          theme: config.pageTheme,
          title: TITLES[appError.status] ?? 'Something went wrong',
          message: appError.safeMessage,
          link,
          requestId,
        }),
      );
  };
}

/** Stands in when AppDeps.storage is absent; never reached, as the store then never counts as ready. */
const missingStorage: { sessions: SessionsRepo; audit: AuditRepo; handoffs: HandoffsRepo } = (() => {
  const refuse = (): Promise<never> => Promise.reject(new AppError('ERR_STORE_UNAVAILABLE', 503, 'No session store is configured.'));
  return {
    sessions: { open: refuse, find: refuse, revoke: refuse, revokeUser: refuse, revokeByIdpSid: refuse, list: refuse, purgeEnded: refuse, renew: refuse, leaseRefresh: refuse, releaseRefresh: refuse, revokedSince: refuse },
    audit: { record: refuse, tail: refuse, purge: refuse },
    handoffs: { issue: refuse, take: refuse, confirm: refuse, redeemedOrigins: refuse } satisfies HandoffsRepo,
  };
})();

/**
 * Builds the auth service's Express app.
 *
 * Guaranteed: security headers (no-store, no framing, strict CSP, nosniff, same-origin referrer)
 * on every response; no response ever contains a stack trace or error detail; unknown routes get
 * a 404 page; `req.ip` follows AUTH_TRUST_PROXY.
 * Not done here: listening, migrations, writing the gate config (see server.ts).
 */
export function createApp(deps: AppDeps): Express {
  const { config, logger } = deps;
  const storeReady = deps.storeReady ?? (() => true);
  const metrics = deps.metrics ?? createMetrics();
  const authenticators = deps.authenticators ?? [createLocalAuthenticator({ usersRepo: deps.usersRepo, hasher: deps.hasher, logger })];
  const sessions: ServerSessions = createServerSessions({
    sessions: deps.storage?.sessions ?? missingStorage.sessions,
    audit: deps.storage?.audit ?? missingStorage.audit,
    lifetimes: config.sessionLifetimes,
    logger,
    now: deps.now,
    storeReady: deps.storage === undefined ? () => false : storeReady,
  });
  const groupSelection = deps.groupSelection ?? createGroupSelectionSource(config);
  const renewSession = createRenewalService({
    config,
    sessions: deps.storage?.sessions ?? missingStorage.sessions,
    usersRepo: deps.usersRepo,
    groupSelection,
    logger,
    now: deps.now,
    storeReady: deps.storage === undefined ? () => false : storeReady,
    recheckSource: createSourceRecheck({
      oidc: deps.oidc ?? null,
      tableau: config.tableau === null ? null : { url: config.tableau.url, timeoutMs: config.tableau.timeoutMs, fetch: metrics.timedFetch('tableau', tableauFetch(config.tableau)) },
      authenticators,
      logger,
    }),
  });
  const renew: typeof renewSession = async (req) => {
    const result = await renewSession(req);
    metrics.renewal(result.ok ? 'renewed' : result.reason);
    return result;
  };
  const loginService = createLoginService({
    metrics,
    authenticators,
    rateLimiter: createLoginRateLimiter(config.rateLimits),
    session: { secret: config.jwt.secret, ttlSeconds: config.session.ttlSeconds, groupSelection },
    logger,
    now: deps.now,
    storeReady,
    sessions,
  });

  const handoff = createSsoHandoff({
    config,
    handoffs: deps.storage?.handoffs ?? missingStorage.handoffs,
    sessions: deps.storage?.sessions ?? missingStorage.sessions,
    recordEvent: (event) => sessions.recordEvent(event),
    logger,
    now: deps.now,
  });

  const app = express();
  // Express prints stack traces from its fallback handler outside production; ours never does.
  app.set('env', 'production');
  app.set('trust proxy', config.trustProxy);
  app.set('x-powered-by', false);
  app.set('etag', false);

  app.use(requestContext(logger, () => groupSelection().policyApps ?? new Set<string>()));
  app.use(securityHeaders(config.sso.appOrigins));
  app.use(createHealthRouter({ storeReady, pingStore: deps.pingStore }));
  app.use(createSsoRouter({ config, handoff, logger }));
  app.use(createOidcRouter({ config, oidc: deps.oidc ?? null, logger, now: deps.now, sessions, metrics, handoff }));
  app.use(createLoginRouter({ config, csrf: createCsrfProtection(config.jwt.secret), loginService, logger, oidc: deps.oidc ?? null, sso: { handoff, renew, now: deps.now } }));
  app.use(createLogoutRouter({ config, logger, oidc: deps.oidc ?? null, sessions, handoff }));
  app.use(createAboutRouter({ config, logger, now: deps.now, sessions, renew }));
  app.use(createRenewRouter({ config, renew, now: deps.now }));
  app.use(createTableauEmbedRouter({ config, logger, now: deps.now, sessions, renew, metrics }));
  app.use(
    createRevocationsRouter({
      config,
      sessions: deps.storage?.sessions ?? missingStorage.sessions,
      storeReady: deps.storage === undefined ? () => false : storeReady,
    }),
  );
  app.use((_req, res) => {
    res
      .status(404)
      .type('html')
      .send(
        renderMessagePage({
          brandName: config.brandName,
          theme: config.pageTheme,
          title: TITLES[404]!,
          message: 'There is nothing at this address.',
          link: { href: '/login', text: 'Go to sign-in' },
          requestId: localsOf(res).requestId,
        }),
      );
  });
  app.use(errorHandler(config, logger));
  return app;
}
