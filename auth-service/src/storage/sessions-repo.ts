import type pg from 'pg';
import type { SessionSource } from '../services/session-identity.js';
import { insertAuthEvent, type AuthEventName } from './audit-repo.js';
import { inTransaction, queryStore, type Queryable } from './db.js';

export interface SessionRecord {
  sid: string;
  username: string;
  userKey: string;
  source: SessionSource;
  src: string;
  createdAt: Date;
  lastSeenAt: Date;
  idleExpiresAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
  clientIp: string;
  userAgent: string | null;
  groups: string[];
  idpSid: string | null;
  /** OIDC: the provider's refresh token, sealed (services/idp-refresh.ts); null when there is none or the session ended. */
  idpRefresh: string | null;
}

export interface OpenSessionInput {
  sid: string;
  /** Truncated to 256 characters. */
  username: string;
  userKey: string;
  source: SessionSource;
  src: string;
  clientIp: string;
  /** Truncated to 256 characters. */
  userAgent: string | null;
  groups: string[];
  idpSid: string | null;
  /** The provider's refresh token, already sealed; never the token itself. */
  idpRefresh?: string | null;
  /** Sign-in time, milliseconds since the epoch (the service's clock). */
  nowMs: number;
  idleSeconds: number;
  maxSeconds: number;
  requestId: string;
}

/** Who ends a session and why; becomes the row's revoke_reason and one audit event per session ended. */
export interface RevokeInput {
  event: Extract<AuthEventName, 'logout' | 'revoke'>;
  reason: string;
  requestId?: string | null;
  clientIp?: string | null;
}

/**
 * What a renewal decided about the locked session row: renew it (storing `groups` as the full list,
 * and `idpRefresh` when given, with `value` handed back to the caller), refuse with `reason`, ending
 * the session when `end`, or `stale`: the row changed since the caller read it, so nothing is
 * written and the caller starts again.
 */
export type RenewalDecision<T> =
  | { renew: true; groups: string[]; idpRefresh?: string; value: T }
  | { renew: false; reason: string; end: boolean }
  | { renew: false; stale: true };

export interface RenewInput<T> {
  sid: string;
  /** The service's clock, milliseconds since the epoch: the new last_seen_at. */
  nowMs: number;
  idleSeconds: number;
  requestId: string | null;
  clientIp: string | null;
  /** Called once with the row, locked (FOR UPDATE) until the transaction ends. */
  decide: (row: SessionRecord) => Promise<RenewalDecision<T>>;
  /** The caller holds the refresh lease (leaseRefresh): the transaction ends it, whatever `decide` says. */
  leased?: boolean;
}

export interface SessionsRepo {
  /**
   * Inserts the session row and its `login_success` event in ONE transaction: either both exist or
   * neither (the caller then must not send the cookie). Throws ERR_STORE_UNAVAILABLE (503) when the
   * store cannot be reached; any other database error propagates.
   */
  open(input: OpenSessionInput): Promise<void>;
  find(sid: string): Promise<SessionRecord | null>;
  /**
   * Ends one session (and writes its event) if it is not ended already. Returns the row as it is
   * now, or null when there is no such sid. A session already revoked keeps its first reason.
   */
  revoke(sid: string, how: RevokeInput): Promise<SessionRecord | null>;
  /** Ends every live session of a user key; returns how many. `db` lets a caller's transaction include it. */
  revokeUser(userKey: string, how: RevokeInput, db?: Queryable): Promise<number>;
  /** Ends every live session of `src` whose provider session is `idpSid` (OIDC front-channel logout). */
  revokeByIdpSid(src: string, idpSid: string, how: RevokeInput): Promise<number>;
  /** Newest first. Without `includeEnded`, only sessions not revoked and not past their absolute expiry at `nowMs`. */
  list(opts: { userKey?: string; includeEnded?: boolean; nowMs: number; limit?: number }): Promise<SessionRecord[]>;
  /** Deletes sessions that ended (expired or revoked) more than `days` days ago; returns how many. */
  purgeEnded(days: number): Promise<number>;
  /**
   * One renewal in ONE transaction, the row locked so that concurrent renewals of a sid run one
   * after the other: `decide` sees the row; a renewal sets last_seen_at to `nowMs`, idle_expires_at
   * to min(nowMs + idleSeconds, expires_at) and the full group list, with a `renewal` event; a refusal
   * writes `renewal_refused` with its reason and, when asked, ends the session (revoke_reason = the
   * reason; a session already revoked keeps its first); `stale` writes nothing. Ending a session
   * (here or by revoke) also drops its sealed refresh token. Returns null (nothing written) when there is
   * no such sid, else the decision. Throws ERR_STORE_UNAVAILABLE (503) when the store cannot be
   * reached; an error thrown by `decide` rolls everything back and propagates.
   */
  renew<T>(input: RenewInput<T>): Promise<RenewalDecision<T> | null>;
  /**
   * Takes the session's refresh lease for `seconds` (database clock) unless another renewal holds
   * one that has not run out: the row as it is now, `busy`, or null when there is no such sid. One
   * statement, so no lock is held while the caller talks to the provider. Not checked: revocation
   * or expiry (the caller checks the row).
   */
  leaseRefresh(sid: string, seconds: number): Promise<SessionRecord | 'busy' | null>;
  /** Ends the refresh lease without renewing (the provider did not answer). */
  releaseRefresh(sid: string): Promise<void>;
  /**
   * The revocation feed (GET /auth/revocations): sessions revoked at or after `sinceMs` (null: no
   * lower bound) and less than `windowSeconds` ago, oldest first, at most `limit`; each with the
   * milliseconds left until revocation + `windowSeconds`. Times are the database's (revoked_at is
   * its now()), as is `nowMs`. One range scan on sessions_revoked_at (migration 005).
   * Throws ERR_STORE_UNAVAILABLE (503) when the store cannot be reached.
   */
  revokedSince(opts: { sinceMs: number | null; windowSeconds: number; limit: number }): Promise<RevokedSince>;
}

export interface RevokedSince {
  nowMs: number;
  sessions: Array<{ sid: string; revokedAtMs: number; ttlMs: number }>;
}

interface SessionRow {
  sid: string;
  username: string;
  user_key: string;
  source: SessionSource;
  src: string;
  created_at: Date;
  last_seen_at: Date;
  idle_expires_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoke_reason: string | null;
  client_ip: string;
  user_agent: string | null;
  groups: string[];
  idp_sid: string | null;
  idp_refresh: string | null;
}

const COLUMNS =
  'sid, username, user_key, source, src, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason, client_ip, user_agent, groups, idp_sid, idp_refresh';
export const MAX_USER_AGENT = 256;
/** Display only (user_key, which matches, is whole): an OIDC e-mail address can be long. */
const MAX_USERNAME = 256;

function toRecord(r: SessionRow): SessionRecord {
  return {
    sid: r.sid,
    username: r.username,
    userKey: r.user_key,
    source: r.source,
    src: r.src,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    idleExpiresAt: r.idle_expires_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    revokeReason: r.revoke_reason,
    clientIp: r.client_ip,
    userAgent: r.user_agent,
    groups: r.groups,
    idpSid: r.idp_sid,
    idpRefresh: r.idp_refresh,
  };
}

function truncate(text: string | null, max: number): string | null {
  if (text === null) return null;
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max).join('');
}

/**
 * Ends the live sessions `where` selects (a parameterised condition over `params`) and writes one
 * event per session ended, with `db` (inside the caller's transaction when one is given).
 */
async function revokeWhere(db: Queryable, where: string, params: unknown[], how: RevokeInput): Promise<SessionRow[]> {
  const n = params.length;
  const result = await db.query<SessionRow>(
    `UPDATE sessions SET revoked_at = now(), revoke_reason = $${n + 1}, idp_refresh = NULL WHERE revoked_at IS NULL AND ${where} RETURNING ${COLUMNS}`,
    [...params, how.reason],
  );
  for (const row of result.rows) {
    await insertAuthEvent(db, {
      event: how.event,
      username: row.username,
      userKey: row.user_key,
      source: row.src,
      clientIp: how.clientIp ?? null,
      requestId: how.requestId ?? null,
      sid: row.sid,
      reason: how.reason,
    });
  }
  return result.rows;
}

/** SessionsRepo.open refused: the local user was disabled while the sign-in was under way. */
export class UserDisabledDuringSignInError extends Error {
  constructor(username: string) {
    super(`user ${JSON.stringify(username)} was disabled during sign-in`);
    this.name = 'UserDisabledDuringSignInError';
  }
}

/**
 * SQL for `sessions`, all parameterised. Connection-class failures become
 * AppError('ERR_STORE_UNAVAILABLE', 503).
 * Not checked: that the user exists (a session outlives nothing; the CLI checks before revoking).
 */
export function createSessionsRepo(pool: pg.Pool): SessionsRepo {
  const run = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => queryStore<R>(pool, text, values);

  return {
    async open(s) {
      const created = new Date(s.nowMs);
      const expires = new Date(s.nowMs + s.maxSeconds * 1000);
      const idle = new Date(Math.min(s.nowMs + s.idleSeconds * 1000, expires.getTime()));
      await inTransaction(pool, async (client) => {
        if (s.source === 'local') {
          // A local user disabled while this sign-in checked the password must not get a live
          // session. The row lock (held to commit) orders this with `users disable`, whose one
          // transaction updates the user and then ends the user's sessions: either it commits
          // first and this sign-in is refused here, or it waits for this session and ends it.
          const user = await client.query<{ disabled: boolean }>('SELECT disabled FROM users WHERE username_key = $1 FOR SHARE', [s.userKey.slice('local:'.length)]);
          if (user.rows[0]?.disabled === true) throw new UserDisabledDuringSignInError(s.username);
        }
        await client.query(
          `INSERT INTO sessions (sid, username, user_key, source, src, created_at, last_seen_at, idle_expires_at, expires_at, client_ip, user_agent, groups, idp_sid, idp_refresh)
           VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, $12, $13)`,
          [s.sid, truncate(s.username, MAX_USERNAME), s.userKey, s.source, s.src, created, idle, expires, s.clientIp, truncate(s.userAgent, MAX_USER_AGENT), s.groups, s.idpSid, s.idpRefresh ?? null],
        );
        await insertAuthEvent(client, {
          event: 'login_success',
          username: s.username,
          userKey: s.userKey,
          source: s.src,
          clientIp: s.clientIp,
          requestId: s.requestId,
          sid: s.sid,
          reason: null,
        });
      });
    },

    async revokedSince({ sinceMs, windowSeconds, limit }) {
      // One row even when nothing was revoked, to carry the database's now().
      const result = await run<{ now_ms: number; sid: string | null; revoked_ms: number | null; ttl_ms: number | null }>(
        `WITH t AS (SELECT now() AS now)
         SELECT (extract(epoch FROM t.now) * 1000)::float8 AS now_ms, r.sid, r.revoked_ms, r.ttl_ms
         FROM t LEFT JOIN LATERAL (
           SELECT sid, (extract(epoch FROM revoked_at) * 1000)::float8 AS revoked_ms,
                  (extract(epoch FROM revoked_at + make_interval(secs => $2) - t.now) * 1000)::float8 AS ttl_ms
           FROM sessions
           WHERE revoked_at IS NOT NULL
             AND revoked_at >= greatest(to_timestamp($1::float8 / 1000), t.now - make_interval(secs => $2))
           ORDER BY revoked_at, sid
           LIMIT $3
         ) r ON true`,
        [sinceMs ?? 0, windowSeconds, limit],
      );
      const rows = result.rows;
      return {
        nowMs: Math.floor(rows[0]!.now_ms),
        sessions: rows
          .filter((r) => r.sid !== null)
          .map((r) => ({ sid: r.sid!, revokedAtMs: Math.floor(r.revoked_ms!), ttlMs: Math.max(1, Math.ceil(r.ttl_ms!)) })),
      };
    },

    async find(sid) {
      const result = await run<SessionRow>(`SELECT ${COLUMNS} FROM sessions WHERE sid = $1`, [sid]);
      return result.rows[0] ? toRecord(result.rows[0]) : null;
    },

    async revoke(sid, how) {
      await inTransaction(pool, (client) => revokeWhere(client, 'sid = $1', [sid], how));
      return this.find(sid);
    },

    async revokeUser(userKey, how, db) {
      if (db !== undefined) return (await revokeWhere(db, 'user_key = $1', [userKey], how)).length;
      return (await inTransaction(pool, (client) => revokeWhere(client, 'user_key = $1', [userKey], how))).length;
    },

    async revokeByIdpSid(src, idpSid, how) {
      return (await inTransaction(pool, (client) => revokeWhere(client, 'src = $1 AND idp_sid = $2', [src, idpSid], how))).length;
    },

    async list({ userKey, includeEnded = false, nowMs, limit = 1000 }) {
      const result = await run<SessionRow>(
        `SELECT ${COLUMNS} FROM sessions
         WHERE ($1::text IS NULL OR user_key = $1) AND ($2 OR (revoked_at IS NULL AND expires_at > $3))
         ORDER BY created_at DESC, sid LIMIT $4`,
        [userKey ?? null, includeEnded, new Date(nowMs), limit],
      );
      return result.rows.map(toRecord);
    },

    async renew(input) {
      return inTransaction(pool, async (client) => {
        const found = await client.query<SessionRow>(`SELECT ${COLUMNS} FROM sessions WHERE sid = $1 FOR UPDATE`, [input.sid]);
        if (found.rows[0] === undefined) return null;
        const row = toRecord(found.rows[0]);
        const decision = await input.decide(row);
        if (input.leased) await client.query('UPDATE sessions SET idp_refresh_lease = NULL WHERE sid = $1', [row.sid]);
        if ('stale' in decision) return decision;
        const event = { username: row.username, userKey: row.userKey, source: row.src, clientIp: input.clientIp, requestId: input.requestId, sid: row.sid };
        if (decision.renew) {
          const idle = new Date(Math.min(input.nowMs + input.idleSeconds * 1000, row.expiresAt.getTime()));
          await client.query('UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3, groups = $4, idp_refresh = coalesce($5, idp_refresh) WHERE sid = $1', [
            row.sid,
            new Date(input.nowMs),
            idle,
            decision.groups,
            decision.idpRefresh ?? null,
          ]);
          await insertAuthEvent(client, { event: 'renewal', ...event, reason: null });
        } else {
          if (decision.end) {
            await client.query('UPDATE sessions SET revoked_at = now(), revoke_reason = $2, idp_refresh = NULL WHERE sid = $1 AND revoked_at IS NULL', [row.sid, decision.reason]);
          }
          await insertAuthEvent(client, { event: 'renewal_refused', ...event, reason: decision.reason });
        }
        return decision;
      });
    },

    async leaseRefresh(sid, seconds) {
      const taken = await run<SessionRow>(
        `UPDATE sessions SET idp_refresh_lease = now() + make_interval(secs => $2)
         WHERE sid = $1 AND (idp_refresh_lease IS NULL OR idp_refresh_lease <= now()) RETURNING ${COLUMNS}`,
        [sid, seconds],
      );
      if (taken.rows[0] !== undefined) return toRecord(taken.rows[0]);
      return (await run('SELECT 1 FROM sessions WHERE sid = $1', [sid])).rows.length > 0 ? 'busy' : null;
    },

    async releaseRefresh(sid) {
      await run('UPDATE sessions SET idp_refresh_lease = NULL WHERE sid = $1', [sid]);
    },

    async purgeEnded(days) {
      const result = await run(
        'DELETE FROM sessions WHERE least(revoked_at, expires_at) < now() - make_interval(days => $1)',
        [days],
      );
      return result.rowCount ?? 0;
    },
  };
}

/**
 * Sessions live at `nowMs`: not revoked, before their absolute end and their idle end. A count for
 * the operators' status view (cli/status-cli.ts); connection failures become ERR_STORE_UNAVAILABLE.
 */
export async function countLiveSessions(db: Queryable, nowMs: number): Promise<number> {
  const result = await queryStore<{ live: string }>(
    db,
    'SELECT count(*)::text AS live FROM sessions WHERE revoked_at IS NULL AND expires_at > $1 AND idle_expires_at > $1',
    [new Date(nowMs)],
  );
  return Number(result.rows[0]?.live ?? 0);
}
