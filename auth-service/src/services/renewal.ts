/**
 * Silent renewal (issue 9): a session token, expired or not, is exchanged for a fresh one with the
 * same `sid` and `iat` while its server-side session is live, after the checks a sign-in would make.
 * nginx does not call it yet; see the README's "Renewal endpoint".
 */
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { liveSecrets, type AuthConfig } from '../config.js';
import { isAppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import type { RenewalDecision, SessionRecord, SessionsRepo } from '../storage/sessions-repo.js';
import type { UserRecord, UsersRepo } from '../storage/users-repo.js';
import { SessionTooLargeError, selectTokenGroups } from './group-selection.js';
import type { GroupSelectionSource } from './group-selection-source.js';
import { sessionSourceOf, sessionUserKey } from './session-identity.js';
import type { SourceCheck, SourceRecheck, SourceRefusal } from './source-recheck.js';
import { signSessionClaims, verifySignedClaims } from './session-token.js';
import { ipBindingAllows, openTableauCredentials, sealTableauCredentials, TABLEAU_TOKEN_CLAIM, type TableauCredentials } from './tableau-token.js';

/** Why a renewal was refused; kebab-case, in the 401 body, the log and the `renewal_refused` event. */
export type RenewalRefusal =
  | 'token-missing'
  | 'token-invalid'
  | 'ip-mismatch'
  | 'session-ended'
  | 'session-idle'
  | 'session-expired'
  | 'user-disabled'
  | SourceRefusal
  /** The groups the current policy names no longer fit in a token: signing in again explains it (403). */
  | 'session-too-large';

export type RenewalResult =
  | { ok: true; token: string; claims: SessionClaims; /** Seconds until the session's absolute expiry: the cookie's Max-Age, so an expired token can still be sent for renewal. */ maxAgeSeconds: number }
  | { ok: false; status: 401; reason: RenewalRefusal }
  | { ok: false; status: 503; reason: 'store-unavailable' | 'policy-unavailable' | 'idp-unavailable' | 'tableau-unavailable' };

export interface RenewalRequest {
  /** The session cookie's value, or undefined when there is none (or it is duplicated). */
  token: string | undefined;
  /** The client address as nginx saw it, normalised. */
  clientIp: string;
  requestId: string;
}

export interface RenewalDeps {
  config: Pick<AuthConfig, 'jwt' | 'session' | 'sessionLifetimes'>;
  sessions: SessionsRepo;
  usersRepo: UsersRepo;
  groupSelection: GroupSelectionSource;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** False while the store is not migrated: every renewal answers 503. */
  storeReady: () => boolean;
  /** Asks the session's identity source (services/source-recheck.ts). Absent: nothing is asked. */
  recheckSource?: SourceRecheck;
}

export type RenewalService = (req: RenewalRequest) => Promise<RenewalResult>;

/** A re-check of the user that failed (returned, not thrown). */
class Refusal {
  constructor(readonly reason: RenewalRefusal) {}
}

/** The session row changed between the source check and the lock: check again. */
const STALE = Symbol('stale');

/**
 * How long one renewal may hold a session's refresh lease: longer than a refresh takes (token,
 * JWKS and Graph requests, each cut after OIDC_TIMEOUT_MS), short enough that a crashed instance
 * blocks the session's renewals only briefly. Another instance waits up to REFRESH_LEASE_WAIT_MS.
 */
const REFRESH_LEASE_SECONDS = 60;
const REFRESH_LEASE_WAIT_MS = 10_000;
const REFRESH_LEASE_POLL_MS = 100;

/** The source check and the row it was made on (null: not made); `leased` when the renewal must end the refresh lease. */
interface SourceCheckOfRow {
  seen: SessionRecord | null;
  check: SourceCheck;
  leased: boolean;
}

/**
 * Runs `work` after every earlier call for the same `key` has settled. Renewals of one session then
 * never redeem one refresh token twice at once: a provider that rotates refresh tokens refuses the
 * second use (and may revoke the whole grant, as RFC 9700 4.14.2 recommends).
 */
function createKeyedQueue(): <T>(key: string, work: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return (key, work) => {
    const run = (tails.get(key) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}

/**
 * Verifies the token as the gate does, except that an expired `exp` is fine: HS256 with the active
 * key or a previous key before its retirement time; `nbf` and `iat` not in the future (leeway);
 * `sub`, `username`, `src`, `sid` strings and a whole-number `iat`. Returns the claims or null.
 */
function verifyForRenewal(token: string, secrets: string[], nowSeconds: number, leeway: number): SessionClaims | null {
  const c = verifySignedClaims(token, secrets, { ignoreExpiration: true, clockTolerance: leeway, clockTimestamp: nowSeconds });
  if (c === null) return null;
  const wellFormed =
    typeof c.sub === 'string' && typeof c.username === 'string' && typeof c.src === 'string' && typeof c.sid === 'string' && typeof c.ip === 'string' && Array.isArray(c.groups);
  if (!wellFormed || typeof c.iat !== 'number' || !Number.isInteger(c.iat) || c.iat > nowSeconds + leeway) return null;
  return c as unknown as SessionClaims;
}

/**
 * Builds the renewal flow.
 *
 * Guaranteed, in order: a missing, forged, retired-key or future-dated token is refused
 * (`token-missing`/`token-invalid`, nothing written); the `ip` claim must match as SESSION_IP_BINDING
 * says (`ip-mismatch`); the server session must exist and not be revoked (`session-ended`), be before
 * its absolute expiry (`session-expired`) and its idle expiry (`session-idle`), both of which end it;
 * a local user must still exist with the same id and be enabled (`user-disabled`, ends the session),
 * and its groups are read again; a Tableau session's sealed token must still be within its lifetime
 * (`tableau-session-expired`, ends the session) and is sealed again under the active key. The new
 * token keeps every claim but `groups*` and `exp`: same `sid` and `iat` (so the gate's maximum age
 * still counts from sign-in), exp = min(now + token TTL, absolute expiry), signed with the active key
 * only. The session row's last_seen_at/idle_expires_at and the `renewal` event (or
 * `renewal_refused`) are written in one transaction; concurrent renewals of one sid run one after
 * the other. A store that cannot answer gives 503 `store-unavailable`, never a token.
 * The identity source is asked first (services/source-recheck.ts: OIDC refresh token, Tableau's
 * current session, a custom module's `refresh` hook), before the row is locked, so no network call
 * runs inside the transaction: a refusal ends the session (`idp-refresh-refused`,
 * `tableau-session-expired`, `custom-refresh-refused`), no answer is 503 (`idp-unavailable`,
 * `tableau-unavailable`) with the session kept, and the groups it names replace the stored ones.
 * Renewals of one sid run one after the other in this process, and a refresh token is redeemed
 * under the row's refresh lease (sessions.idp_refresh_lease), so other instances wait for it; when
 * the row's refresh token still changed between the check and the lock (a lease that ran out), a
 * refusal is not trusted and the whole renewal runs once more.
 * Not checked: OIDC/Entra sessions without a refresh token and custom modules without the hook
 * (their groups are the ones stored at sign-in).
 */
export function createRenewalService(deps: RenewalDeps): RenewalService {
  const { config, logger } = deps;
  const leeway = config.session.leewaySeconds;

  /** The refusal for a row, if any, and whether it ends the session. */
  function rowRefusal(row: SessionRecord, nowMs: number): { reason: RenewalRefusal; end: boolean } | null {
    if (row.revokedAt !== null) return { reason: 'session-ended', end: false };
    if (row.expiresAt.getTime() <= nowMs) return { reason: 'session-expired', end: true };
    if (row.idleExpiresAt.getTime() <= nowMs) return { reason: 'session-idle', end: true };
    return null;
  }

  /**
   * The full group list a sign-in would give now, or a refusal. `localUser` was read before the
   * session row was locked: on the embedded store a query on another connection would wait for the
   * transaction to end. A disable committed in between has revoked the row, which the lock then shows.
   * `tableau` is the session's opened Tableau credentials: undefined when it has none, null when
   * they do not open.
   */
  function currentGroups(claims: SessionClaims, row: SessionRecord, nowSeconds: number, localUser: UserRecord | null, tableau: TableauCredentials | null | undefined, check: SourceCheck): string[] | Refusal {
    if (claims.src === 'local') {
      // A user deleted and created again under the same name is another account (another id).
      if (localUser === null || localUser.disabled || localUser.id !== claims.sub) return new Refusal('user-disabled');
      return [...localUser.groups];
    }
    if (tableau !== undefined && (tableau === null || nowSeconds > tableau.expiresAt)) return new Refusal('tableau-session-expired');
    if (check.kind === 'refused') return new Refusal(check.reason);
    return check.kind === 'ok' && check.groups !== undefined ? [...check.groups] : [...row.groups];
  }

  const queue = createKeyedQueue();

  /**
   * The source check, made on the row as read now (before the lock). Skipped (`ok`) when the row
   * refuses anyway, so an ended session costs no call to the provider.
   */
  async function checkSource(claims: SessionClaims, req: RenewalRequest, nowMs: number, secrets: string[], tableau: TableauCredentials | null | undefined): Promise<SourceCheckOfRow> {
    const skipped: SourceCheckOfRow = { seen: null, check: { kind: 'ok' }, leased: false };
    if (deps.recheckSource === undefined || sessionSourceOf(claims.src) === 'local' || tableau === null) return skipped;
    let seen = await deps.sessions.find(claims.sid);
    const refuses = (row: SessionRecord | null) => row === null || row.userKey !== sessionUserKey(claims.src, claims.username, claims.sub) || rowRefusal(row, nowMs) !== null;
    if (refuses(seen) || !ipBindingAllows(config.session.ipBinding, claims.ip, req.clientIp)) return skipped;
    if (tableau !== undefined && Math.floor(nowMs / 1000) > tableau.expiresAt) return skipped;
    const leased = sessionSourceOf(claims.src) === 'oidc' && seen!.idpRefresh !== null;
    if (leased) {
      const current = await leaseRefresh(claims.sid);
      if (current === 'busy') {
        logger.error({ event: 'auth_error', what: 'renewal', reason: 'refresh-lease-busy', src: claims.src, sid: claims.sid, request_id: req.requestId });
        return { seen: null, check: { kind: 'unavailable', reason: 'idp-unavailable' }, leased: false };
      }
      // Read again with the lease: another instance may have renewed (rotated the token) meanwhile.
      seen = current;
      if (refuses(seen)) return { ...skipped, leased: seen !== null };
    }
    let check: SourceCheck;
    try {
      check = await deps.recheckSource({ claims, row: seen!, tableau, secrets, requestId: req.requestId });
    } catch (err) {
      if (leased) await deps.sessions.releaseRefresh(claims.sid).catch(() => undefined);
      throw err;
    }
    if (leased && check.kind === 'unavailable') await deps.sessions.releaseRefresh(claims.sid).catch(() => undefined);
    return { seen, check, leased: leased && check.kind !== 'unavailable' };
  }

  /** The refresh lease, waiting while another instance's renewal holds it (this process queues by sid). */
  async function leaseRefresh(sid: string): Promise<SessionRecord | 'busy' | null> {
    for (let waited = 0; ; waited += REFRESH_LEASE_POLL_MS) {
      const leased = await deps.sessions.leaseRefresh(sid, REFRESH_LEASE_SECONDS);
      if (leased !== 'busy' || waited >= REFRESH_LEASE_WAIT_MS) return leased;
      await new Promise((resolve) => setTimeout(resolve, REFRESH_LEASE_POLL_MS));
    }
  }

  const renewOnce = async (req: RenewalRequest): Promise<RenewalResult | typeof STALE> => {
    const nowMs = deps.now();
    const nowSeconds = Math.floor(nowMs / 1000);
    const log = (level: 'info' | 'warn', reason: string, claims?: SessionClaims) =>
      logger[level]({ event: 'renewal_refused', reason, user: claims?.username, src: claims?.src, sid: claims?.sid, request_id: req.requestId });

    if (req.token === undefined) {
      log('info', 'token-missing');
      return { ok: false, status: 401, reason: 'token-missing' };
    }
    const secrets = [config.jwt.secret, ...liveSecrets(config.jwt.previousKeys, nowSeconds)];
    const claims = verifyForRenewal(req.token, secrets, nowSeconds, leeway);
    if (claims === null) {
      // Forged, retired key or future-dated: a warning, as a forged token at the gate.
      log('warn', 'token-invalid');
      return { ok: false, status: 401, reason: 'token-invalid' };
    }
    if (!deps.storeReady()) return { ok: false, status: 503, reason: 'store-unavailable' };
    let selection: ReturnType<GroupSelectionSource>;
    try {
      selection = deps.groupSelection();
    } catch (err) {
      // The compiled policy (which groups the token carries) cannot be read: fail closed, no token.
      logger.error({ event: 'auth_error', reason: 'policy-unavailable', what: 'renewal', sid: claims.sid, request_id: req.requestId, err: errorSummary(err) });
      return { ok: false, status: 503, reason: 'policy-unavailable' };
    }

    let decision: RenewalDecision<{ token: string; claims: SessionClaims; maxAgeSeconds: number }> | null;
    try {
      const localUser = claims.src === 'local' ? await deps.usersRepo.findByUsername(claims.username) : null;
      const tableau = claims.src === 'tableau' && claims[TABLEAU_TOKEN_CLAIM] !== undefined ? openTableauCredentials(claims[TABLEAU_TOKEN_CLAIM], secrets) : undefined;
      const { seen, check, leased } = await checkSource(claims, req, nowMs, secrets, tableau);
      if (check.kind === 'unavailable') return { ok: false, status: 503, reason: check.reason };
      decision = await deps.sessions.renew({
        sid: claims.sid,
        nowMs,
        idleSeconds: config.sessionLifetimes.idleSeconds,
        requestId: req.requestId,
        clientIp: req.clientIp,
        leased,
        decide: async (row) => {
          const refuse = (reason: RenewalRefusal, end: boolean) => ({ renew: false as const, reason, end });
          if (row.userKey !== sessionUserKey(claims.src, claims.username, claims.sub)) return refuse('token-invalid', false);
          if (!ipBindingAllows(config.session.ipBinding, claims.ip, req.clientIp)) return refuse('ip-mismatch', false);
          const ended = rowRefusal(row, nowMs);
          if (ended !== null) return refuse(ended.reason, ended.end);
          // Another renewal (another instance) rotated the refresh token since it was read: the
          // provider's refusal may be of the old one, so it does not end the session.
          if (seen !== null && check.kind === 'refused' && row.idpRefresh !== seen.idpRefresh) return { renew: false as const, stale: true as const };
          const groups = currentGroups(claims, row, nowSeconds, localUser, tableau, check);
          if (groups instanceof Refusal) return refuse(groups.reason, true);

          let selected: ReturnType<typeof selectTokenGroups>;
          try {
            selected = selectTokenGroups(groups, selection);
          } catch (err) {
            if (err instanceof SessionTooLargeError) return refuse('session-too-large', true);
            throw err;
          }
          const renewed: SessionClaims = { ...claims, groups: selected.groups };
          delete renewed.groups_count;
          delete renewed.groups_digest;
          if (selected.filtered) {
            renewed.groups_count = selected.count;
            renewed.groups_digest = selected.digest;
          }
          const absoluteEnd = Math.floor(row.expiresAt.getTime() / 1000);
          renewed.exp = Math.min(nowSeconds + config.session.ttlSeconds, absoluteEnd);
          // Sealed again under the active key, so the Tableau token outlives a rotation's grace period.
          if (tableau) renewed[TABLEAU_TOKEN_CLAIM] = sealTableauCredentials(tableau, config.jwt.secret);
          const token = signSessionClaims(renewed, config.jwt.secret);
          return { renew: true as const, groups, idpRefresh: check.kind === 'ok' ? check.idpRefresh : undefined, value: { token, claims: renewed, maxAgeSeconds: Math.max(absoluteEnd - nowSeconds, 0) } };
        },
      });
    } catch (err) {
      if (isAppError(err) && err.code === 'ERR_STORE_UNAVAILABLE') {
        logger.error({ event: 'auth_error', reason: 'store-unavailable', what: 'renewal', sid: claims.sid, request_id: req.requestId, err: errorSummary(err) });
        return { ok: false, status: 503, reason: 'store-unavailable' };
      }
      throw err;
    }
    if (decision === null) {
      log('warn', 'session-ended', claims);
      return { ok: false, status: 401, reason: 'session-ended' };
    }
    if ('stale' in decision) return STALE;
    if (!decision.renew) {
      log('info', decision.reason, claims);
      return { ok: false, status: 401, reason: decision.reason as RenewalRefusal };
    }
    logger.info({ event: 'renewal', user: claims.username, src: claims.src, sid: claims.sid, exp: decision.value.claims.exp, request_id: req.requestId });
    return { ok: true, ...decision.value };
  };

  return (req) => {
    const renewChecked = async (): Promise<RenewalResult> => {
      const first = await renewOnce(req);
      if (first !== STALE) return first;
      const second = await renewOnce(req);
      return second !== STALE ? second : { ok: false, status: 503, reason: 'idp-unavailable' };
    };
    // The sid only orders renewals; renewOnce verifies the token.
    const sid = req.token === undefined ? null : verifySignedClaims(req.token, [config.jwt.secret, ...liveSecrets(config.jwt.previousKeys, Math.floor(deps.now() / 1000))], { ignoreExpiration: true })?.sid;
    return typeof sid === 'string' ? queue(sid, renewChecked) : renewChecked();
  };
}
