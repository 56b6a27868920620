/**
 * Server-side sessions and the audit trail as the routes use them: open a session with its
 * login_success event before the cookie goes out (or fail the sign-in), end sessions, ask whether one
 * is still live, and write the other audit events without ever holding up a response for long.
 */
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { IDP_SID_CLAIM } from '../authenticators/oidc.js';
import { AppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import type { AuditRepo, AuthEventInput } from '../storage/audit-repo.js';
import { UserDisabledDuringSignInError, type RevokeInput, type SessionsRepo } from '../storage/sessions-repo.js';
import { sessionSourceOf, sessionUserKey } from './session-identity.js';

export const SESSION_STORE_UNAVAILABLE_MESSAGE = 'Sign-in is temporarily unavailable. Please try again in a few minutes.';

/** How long a best-effort audit write may delay a response. */
export const DEFAULT_EVENT_TIMEOUT_MS = 500;

export interface SessionContext {
  clientIp: string;
  userAgent: string | null;
  requestId: string;
  /** The identity's full group list, kept for renewal; the token may carry fewer (group-selection). Default: the token's. */
  groups?: readonly string[];
  /** OIDC: the provider's refresh token, already sealed (services/idp-refresh.ts), for renewal. */
  idpRefresh?: string | null;
}

/** `live`: not revoked and before its absolute expiry; `ended`: revoked or expired; `unknown`: no row. */
export type SessionState = 'live' | 'ended' | 'unknown';

export interface ServerSessions {
  /**
   * Writes the session row and its login_success event in one transaction. Throws
   * AppError('ERR_STORE_UNAVAILABLE', 503) when that fails for any reason, or while the store is not
   * migrated, and UserDisabledDuringSignInError (nothing written) when the local user was disabled
   * meanwhile: the caller must then not send the cookie.
   */
  open(claims: SessionClaims, ctx: SessionContext): Promise<void>;
  /** Best effort: waits at most the event timeout, logs a failure, never throws. */
  recordEvent(event: AuthEventInput): Promise<void>;
  /** Ends one session. Best effort as recordEvent; true when the row is now revoked. */
  end(sid: string, how: RevokeInput): Promise<boolean>;
  /** Ends the sessions a provider session names (front-channel logout). Best effort; returns how many. */
  endByIdpSid(src: string, idpSid: string, how: RevokeInput): Promise<number>;
  /** Throws AppError('ERR_STORE_UNAVAILABLE', 503) when the store cannot say. */
  state(sid: string, nowMs: number): Promise<SessionState>;
}

export interface ServerSessionsDeps {
  sessions: SessionsRepo;
  audit: AuditRepo;
  lifetimes: { maxSeconds: number; idleSeconds: number };
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** False while the store is not migrated: sessions cannot be opened, events are skipped. */
  storeReady: () => boolean;
  eventTimeoutMs?: number;
}

class TimeoutError extends Error {}

/** `work`, or a TimeoutError after `ms` (the work goes on in the background; its failure is ignored). */
function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createServerSessions(deps: ServerSessionsDeps): ServerSessions {
  const { sessions, audit, logger } = deps;
  const eventTimeoutMs = deps.eventTimeoutMs ?? DEFAULT_EVENT_TIMEOUT_MS;

  async function bestEffort<T>(what: string, fields: Record<string, unknown>, work: () => Promise<T>, fallback: T): Promise<T> {
    if (!deps.storeReady()) {
      logger.warn({ event: 'audit_skipped', what, reason: 'store-not-ready', ...fields });
      return fallback;
    }
    try {
      return await bounded(work(), eventTimeoutMs);
    } catch (err) {
      logger.error({ event: 'audit_write_failed', what, reason: err instanceof TimeoutError ? 'timeout' : 'store-error', ...fields, err: errorSummary(err) });
      return fallback;
    }
  }

  return {
    async open(claims, ctx) {
      if (!deps.storeReady()) throw new AppError('ERR_STORE_UNAVAILABLE', 503, SESSION_STORE_UNAVAILABLE_MESSAGE);
      const idpSid = claims[IDP_SID_CLAIM];
      try {
        await sessions.open({
          sid: claims.sid,
          username: claims.username,
          userKey: sessionUserKey(claims.src, claims.username, claims.sub),
          source: sessionSourceOf(claims.src),
          src: claims.src,
          clientIp: ctx.clientIp,
          userAgent: ctx.userAgent,
          groups: ctx.groups !== undefined ? [...ctx.groups] : claims.groups,
          idpSid: typeof idpSid === 'string' ? idpSid : null,
          idpRefresh: ctx.idpRefresh ?? null,
          nowMs: claims.iat * 1000,
          idleSeconds: deps.lifetimes.idleSeconds,
          maxSeconds: deps.lifetimes.maxSeconds,
          requestId: ctx.requestId,
        });
      } catch (err) {
        // Not a store failure: the login service answers it as a disabled user's sign-in.
        if (err instanceof UserDisabledDuringSignInError) throw err;
        logger.error({ event: 'auth_error', user: claims.username, src: claims.src, sid: claims.sid, reason: 'session-not-stored', request_id: ctx.requestId, err: errorSummary(err) });
        throw new AppError('ERR_STORE_UNAVAILABLE', 503, SESSION_STORE_UNAVAILABLE_MESSAGE, { cause: err });
      }
    },

    recordEvent(event) {
      return bestEffort('event', { audit_event: event.event, request_id: event.requestId }, () => audit.record(event), undefined);
    },

    async end(sid, how) {
      const row = await bestEffort('revoke', { sid, request_id: how.requestId }, () => sessions.revoke(sid, how), null);
      return row?.revokedAt != null;
    },

    endByIdpSid(src, idpSid, how) {
      return bestEffort('revoke', { src, request_id: how.requestId }, () => sessions.revokeByIdpSid(src, idpSid, how), 0);
    },

    async state(sid, nowMs) {
      if (!deps.storeReady()) throw new AppError('ERR_STORE_UNAVAILABLE', 503, SESSION_STORE_UNAVAILABLE_MESSAGE);
      const row = await sessions.find(sid);
      if (row === null) return 'unknown';
      return row.revokedAt === null && row.expiresAt.getTime() > nowMs ? 'live' : 'ended';
    },
  };
}
