/**
 * The sign-in flow behind POST /login: rate limits, authentication, session issuing and the auth
 * event log lines. The route around it only parses the form and renders.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import type { PasswordAuthenticator } from '../authenticators/types.js';
import { AppError, isAppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import { secondsSince, type AuthMetrics, type LoginResult as MetricResult } from '../metrics.js';
import type { LoginRateLimiter, RateLimitScope } from '../security/login-rate-limiter.js';
import { usernameKey } from '../security/username-key.js';
import type { ServerSessions } from './server-sessions.js';
import { UserDisabledDuringSignInError } from '../storage/sessions-repo.js';
import { SessionTooLargeError } from './group-selection.js';
import type { GroupSelectionSource } from './group-selection-source.js';
import { issueSessionToken } from './session-token.js';

/**
 * What the sources after the deciding one are asked with: a random name no account has (so the
 * decoy never counts toward that source's own lockout of a real account) and 192 random bits.
 */
function decoyCredentials(): { username: string; password: string } {
  return { username: `decoy-${randomBytes(16).toString('base64url')}`, password: randomBytes(24).toString('base64url') };
}

export const STORE_UNAVAILABLE_MESSAGE = 'Sign-in is temporarily unavailable. Please try again in a few minutes.';

export type FailureReason = 'not-found' | 'invalid' | 'disabled';

export type LoginResult =
  | {
      kind: 'success';
      token: string;
      claims: SessionClaims;
      /** The source's undo (e.g. Tableau sign-out) for a caller that cannot deliver the session after all. Never throws. */
      discard: () => Promise<void>;
    }
  | { kind: 'failure'; reason: FailureReason };

export interface LoginAttempt {
  username: string;
  password: string;
  /** Normalised client address; becomes the `ip` claim. */
  ip: string;
  requestId: string;
  /** The User-Agent header, kept (truncated) with the server-side session. */
  userAgent?: string | null;
}

export interface LoginServiceDeps {
  authenticators: PasswordAuthenticator[];
  rateLimiter: LoginRateLimiter;
  /** `groupSelection` is asked at each sign-in, so a reloaded policy applies to the next one. */
  session: { secret: string; ttlSeconds: number; groupSelection: GroupSelectionSource };
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** False while the store is not migrated yet: sign-in answers 503 without touching it. */
  storeReady: () => boolean;
  /** Opens the server-side session of a success, and writes failure and rate-limit events. */
  sessions: Pick<ServerSessions, 'open' | 'recordEvent' | 'end'>;
  /** Counts each attempt (by deciding source and result) and each rate-limit hit. */
  metrics?: Pick<AuthMetrics, 'login' | 'rateLimitHit'>;
}

export interface LoginService {
  /**
   * Returns success with a signed token, or a failure whose reason is for the log only (the user
   * sees one generic message for all of them).
   * Throws AppError: ERR_RATE_LIMITED (429, with retryAfterSeconds) before any password work,
   * ERR_STORE_UNAVAILABLE (503) when the user store cannot be reached; any other AppError with
   * status 503 (e.g. ERR_IDP_UNAVAILABLE) is rethrown unchanged. Other errors propagate.
   */
  attempt(input: LoginAttempt): Promise<LoginResult>;
}

/** "Try again in 1 minute." / "Try again in 4 minutes." (rounded up, never 0). */
export function rateLimitMessage(retryAfterSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
  return `Too many sign-in attempts. Try again in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`;
}

/** At most one `rate_limited` audit row per limited key (client, username or both) in this time. */
export const RATE_LIMIT_EVENT_INTERVAL_MS = 60_000;
const MAX_REMEMBERED_RATE_LIMIT_KEYS = 10_000;

/**
 * Decides whether a rate-limit hit gets an audit row: the first hit on a key in each interval does,
 * the flood after it does not, so that refused attempts cannot turn into a flood of database writes.
 */
function createRateLimitAuditFilter(): (scope: RateLimitScope, username: string, ip: string, nowMs: number) => boolean {
  const lastWritten = new Map<string, number>();
  return (scope, username, ip, nowMs) => {
    const key = scope === 'ip' ? `ip ${ip}` : scope === 'user' ? `user ${usernameKey(username)}` : `user-ip ${usernameKey(username)} ${ip}`;
    const last = lastWritten.get(key);
    if (last !== undefined && nowMs - last < RATE_LIMIT_EVENT_INTERVAL_MS) return false;
    // Forgetting everything only lets a few more rows through; it never grows without bound.
    if (lastWritten.size >= MAX_REMEMBERED_RATE_LIMIT_KEYS) lastWritten.clear();
    lastWritten.set(key, nowMs);
    return true;
  };
}

export function createLoginService(deps: LoginServiceDeps): LoginService {
  const { authenticators, rateLimiter, logger } = deps;
  const auditRateLimit = createRateLimitAuditFilter();
  if (authenticators.length === 0) throw new Error('createLoginService needs at least one authenticator');
  const sourceIds = authenticators.map((a) => a.id).join(',');

  async function attempt({ username, password, ip, requestId, userAgent }: LoginAttempt, chosen: { src: string }): Promise<LoginResult> {
    const decision = await rateLimiter.admit(username, ip);
    if (!decision.allowed) {
      deps.metrics?.rateLimitHit(decision.scope);
      logger.warn({ event: 'auth_failure', user: username, src: sourceIds, reason: `rate-limited-${decision.scope}`, request_id: requestId });
      if (auditRateLimit(decision.scope, username, ip, deps.now())) {
        await deps.sessions.recordEvent({ event: 'rate_limited', username, source: sourceIds, clientIp: ip, requestId, reason: `rate-limited-${decision.scope}` });
      }
      throw new AppError('ERR_RATE_LIMITED', 429, rateLimitMessage(decision.retryAfterSeconds), {
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
    if (!deps.storeReady()) {
      logger.error({ event: 'auth_error', user: username, src: sourceIds, reason: 'store-not-ready', request_id: requestId });
      throw new AppError('ERR_STORE_UNAVAILABLE', 503, STORE_UNAVAILABLE_MESSAGE);
    }

    // Sources are asked in order; the first that knows the user decides. The sources after it are
    // still asked, with a random name and password that cannot succeed, so that a wrong password and an
    // unknown username take the same time and get the same answer when a later source (Tableau)
    // is down: otherwise the status and the timing told which local accounts exist (issue 8). The
    // decoy keeps the user's password away from sources that did not decide, and can open no
    // session there.
    let reason: FailureReason = 'not-found';
    let src = authenticators[authenticators.length - 1]!.id;
    for (const authenticator of authenticators) {
      const decided = reason !== 'not-found';
      let outcome;
      try {
        outcome = await authenticator.authenticate(decided ? decoyCredentials() : { username, password }, { requestId });
      } catch (err) {
        const storeDown = isAppError(err) && err.code === 'ERR_STORE_UNAVAILABLE';
        // Every hashing slot and queue place taken (passwords/hashing-limiter.ts): 503 + Retry-After.
        const busy = isAppError(err) && err.code === 'ERR_LOGIN_BUSY';
        // Any other 503 (an identity provider that is down or slow) already carries its own safe message.
        const sourceDown = !storeDown && isAppError(err) && err.status === 503;
        logger.error({
          event: 'auth_error',
          user: username,
          src: authenticator.id,
          reason: storeDown ? 'store-unavailable' : busy ? 'hashing-busy' : sourceDown ? 'source-unavailable' : 'authenticator-error',
          request_id: requestId,
          err: errorSummary(err),
        });
        if (storeDown) throw new AppError('ERR_STORE_UNAVAILABLE', 503, STORE_UNAVAILABLE_MESSAGE, { cause: err });
        throw err;
      }
      if (decided) continue;
      if (outcome.kind === 'success') {
        const discard = outcome.discard ?? (() => Promise.resolve());
        let issued;
        try {
          issued = issueSessionToken({
            identity: outcome.identity,
            ip,
            secret: deps.session.secret,
            ttlSeconds: deps.session.ttlSeconds,
            now: deps.now(),
            groupSelection: deps.session.groupSelection(),
          });
          await rateLimiter.recordSuccess(username, ip);
          // Before the cookie exists: a sign-in that is answered with success always has its row.
          await deps.sessions.open(issued.claims, { clientIp: ip, userAgent: userAgent ?? null, requestId, groups: outcome.identity.groups });
        } catch (err) {
          if (err instanceof UserDisabledDuringSignInError) {
            // Disabled while the password was being checked: the answer a disabled user gets.
            await discard();
            src = authenticator.id;
            chosen.src = src;
            reason = 'disabled';
            continue;
          }
          if (err instanceof SessionTooLargeError) {
            logger.warn({
              event: 'auth_failure',
              user: outcome.identity.username,
              src: outcome.identity.src,
              reason: 'session-too-large',
              groups: outcome.identity.groups.length,
              policy_groups: err.neededGroups,
              group_bytes: err.neededBytes,
              request_id: requestId,
            });
          }
          // The source already holds a session for this sign-in (Tableau: a live token for 240
          // minutes); no cookie will carry it, so end it before failing.
          await discard();
          throw err;
        }
        const { token, claims } = issued;
        chosen.src = claims.src;
        logger.info({ event: 'auth_success', user: claims.username, src: claims.src, sid: claims.sid, groups: issued.groups.count, token_groups: issued.groups.groups.length, request_id: requestId });
        // A caller that cannot deliver the cookie after all also ends the server-side session.
        const discardAll = async (): Promise<void> => {
          await discard();
          await deps.sessions.end(claims.sid, { event: 'revoke', reason: 'not-delivered', requestId, clientIp: ip });
        };
        return { kind: 'success', token, claims, discard: discardAll };
      }
      src = authenticator.id;
      chosen.src = src;
      reason = outcome.kind;
    }

    await rateLimiter.recordFailure(username, ip);
    logger.warn({ event: 'auth_failure', user: username, src, reason, request_id: requestId });
    await deps.sessions.recordEvent({ event: 'login_failure', username, source: src, clientIp: ip, requestId, reason });
    return { kind: 'failure', reason };
  }

  return {
    async attempt(input) {
      const started = process.hrtime.bigint();
      // `password` until a source decides (a refusal by a rate limit or a store that is down).
      const chosen = { src: 'password' };
      let result: MetricResult = 'error';
      try {
        const answer = await attempt(input, chosen);
        result = answer.kind;
        return answer;
      } catch (err) {
        if (isAppError(err) && err.code === 'ERR_RATE_LIMITED') result = 'rate_limited';
        else if (err instanceof SessionTooLargeError) result = 'failure';
        throw err;
      } finally {
        deps.metrics?.login(chosen.src, result, secondsSince(started));
      }
    },
  };
}
