import type pg from 'pg';
import { requestApp } from '../logger.js';
import { usernameKey } from '../security/username-key.js';
import { inTransaction, toStoreError, type Queryable } from './db.js';

/** Names of the rows in `auth_events` (the migration's CHECK lists the same). */
export type AuthEventName =
  | 'login_success'
  | 'login_failure'
  | 'rate_limited'
  | 'logout'
  | 'revoke'
  | 'disable'
  | 'renewal'
  | 'renewal_refused'
  | 'handoff_issued'
  | 'handoff_redeemed'
  | 'handoff_refused';

/**
 * One audit row. Only these fields exist, so no password, token or cookie can be written: callers
 * pass names, addresses and reasons, never credentials. Text is truncated to the column limits.
 */
export interface AuthEventInput {
  event: AuthEventName;
  /** The user, or the name someone tried to sign in with. */
  username?: string | null;
  userKey?: string | null;
  source?: string | null;
  clientIp?: string | null;
  requestId?: string | null;
  sid?: string | null;
  reason?: string | null;
  /** The app (issue 12); absent: the app of the request being handled (logger.ts requestApp). */
  app?: string | null;
}

export interface AuthEventRecord {
  id: string;
  at: Date;
  event: AuthEventName;
  username: string | null;
  userKey: string | null;
  source: string | null;
  clientIp: string | null;
  requestId: string | null;
  sid: string | null;
  reason: string | null;
  /** The app the event came through; null for the default app. */
  app: string | null;
}

export interface AuditRepo {
  record(event: AuthEventInput): Promise<void>;
  /**
   * Events at or after `since` (all when absent), oldest first, the newest `limit`. With `user`: the
   * events of that account (`userKey`), and the attempts with no known account whose typed name has
   * the username key `nameKey` (failed sign-ins, rate-limit hits).
   */
  tail(opts: { user?: { userKey: string; nameKey: string }; since?: Date; limit: number }): Promise<AuthEventRecord[]>;
  /**
   * Deletes events older than `retentionDays` days (≥ 1), in a transaction that sets
   * `gateway.audit_purge_days`, the only way past the table's append-only trigger. Returns the count.
   */
  purge(retentionDays: number): Promise<number>;
}

const LIMITS = { username: 256, userKey: 300, source: 64, clientIp: 64, requestId: 128, sid: 128, reason: 200 } as const;

function clip(value: string | null | undefined, max: number): string | null {
  if (value === undefined || value === null) return null;
  // By code point, so a surrogate pair is never split.
  const chars = Array.from(value);
  return chars.length <= max ? value : chars.slice(0, max).join('');
}

/** Inserts one event with `db` (a pool, or the client of a caller's transaction). */
export async function insertAuthEvent(db: Queryable, e: AuthEventInput): Promise<void> {
  await db.query(
    'INSERT INTO auth_events (event, username, user_key, name_key, source, client_ip, request_id, sid, reason, app) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
    [
      e.event,
      clip(e.username, LIMITS.username),
      clip(e.userKey, LIMITS.userKey),
      clip(e.username === undefined || e.username === null ? null : usernameKey(e.username), LIMITS.username),
      clip(e.source, LIMITS.source),
      clip(e.clientIp, LIMITS.clientIp),
      clip(e.requestId, LIMITS.requestId),
      clip(e.sid, LIMITS.sid),
      clip(e.reason, LIMITS.reason),
      e.app !== undefined ? e.app : requestApp(),
    ],
  );
}

interface EventRow {
  id: string;
  at: Date;
  event: AuthEventName;
  username: string | null;
  user_key: string | null;
  source: string | null;
  client_ip: string | null;
  request_id: string | null;
  sid: string | null;
  reason: string | null;
  app: string | null;
}

/** The audit events that record something refused: failed sign-ins, rate-limit hits, refused renewals and hand-offs. */
export const FAILURE_EVENTS: readonly AuthEventName[] = ['login_failure', 'rate_limited', 'renewal_refused', 'handoff_refused'];

/**
 * The newest `limit` FAILURE_EVENTS, newest first (the operators' status view, cli/status-cli.ts).
 * Connection failures become ERR_STORE_UNAVAILABLE.
 */
export async function recentFailures(db: Queryable, limit: number): Promise<AuthEventRecord[]> {
  try {
    const result = await db.query<EventRow>(
      `SELECT id::text AS id, at, event, username, user_key, source, client_ip, request_id, sid, reason, app FROM auth_events
       WHERE event = ANY($1::text[]) ORDER BY at DESC, id DESC LIMIT $2`,
      [FAILURE_EVENTS, limit],
    );
    return result.rows.map(toRecord);
  } catch (err) {
    throw toStoreError(err);
  }
}

function toRecord(r: EventRow): AuthEventRecord {
  return {
    id: r.id,
    at: r.at,
    event: r.event,
    username: r.username,
    userKey: r.user_key,
    source: r.source,
    clientIp: r.client_ip,
    requestId: r.request_id,
    sid: r.sid,
    reason: r.reason,
    app: r.app,
  };
}

/**
 * SQL for `auth_events`, all parameterised. Connection-class failures become
 * AppError('ERR_STORE_UNAVAILABLE', 503).
 */
export function createAuditRepo(pool: pg.Pool): AuditRepo {
  return {
    async record(event) {
      try {
        await insertAuthEvent(pool, event);
      } catch (err) {
        throw toStoreError(err);
      }
    },

    async tail({ user, since, limit }) {
      try {
        const result = await pool.query<EventRow>(
          `SELECT * FROM (
             SELECT id::text AS id, at, event, username, user_key, source, client_ip, request_id, sid, reason, app FROM auth_events
             WHERE ($1::text IS NULL OR user_key = $1 OR (user_key IS NULL AND name_key = $2)) AND ($3::timestamptz IS NULL OR at >= $3)
             ORDER BY at DESC, id DESC LIMIT $4
           ) newest ORDER BY at, id::bigint`,
          [user?.userKey ?? null, user?.nameKey ?? null, since ?? null, limit],
        );
        return result.rows.map(toRecord);
      } catch (err) {
        throw toStoreError(err);
      }
    },

    async purge(retentionDays) {
      if (!Number.isSafeInteger(retentionDays) || retentionDays < 1) throw new Error(`retention must be a whole number of days ≥ 1 (got ${retentionDays})`);
      return inTransaction(pool, async (client) => {
        // set_config(…, true) is SET LOCAL: it ends with this transaction, so no other statement (on
        // the embedded store all connections share one session) ever runs with it set.
        await client.query("SELECT set_config('gateway.audit_purge_days', $1, true)", [String(retentionDays)]);
        const result = await client.query('DELETE FROM auth_events WHERE at < now() - make_interval(days => $1)', [retentionDays]);
        return result.rowCount ?? 0;
      });
    },
  };
}
