import type pg from 'pg';
import { insertAuthEvent, type AuthEventInput } from './audit-repo.js';
import { inTransaction, queryStore } from './db.js';

/** One hand-off code as stored: never the code, only its hash (db/migrations/007_sso_handoffs.sql). */
export interface HandoffRecord {
  codeHash: string;
  sid: string;
  targetOrigin: string;
  clientIp: string;
  claims: Record<string, unknown>;
  createdAt: Date;
  expiresAt: Date;
}

export interface IssueHandoffInput {
  codeHash: string;
  sid: string;
  targetOrigin: string;
  clientIp: string;
  claims: Record<string, unknown>;
  /** The service's clock, milliseconds since the epoch. */
  nowMs: number;
  ttlSeconds: number;
  /** The `handoff_issued` audit row, written in the same transaction. */
  event: AuthEventInput;
}

export interface HandoffsRepo {
  /** Stores the code's hash and its `handoff_issued` event in one transaction. */
  issue(input: IssueHandoffInput): Promise<void>;
  /**
   * Marks the code used, if it exists and is unused, in ONE statement (`UPDATE … WHERE used_at IS
   * NULL RETURNING`), so two concurrent redemptions cannot both succeed. Returns the row when this
   * call took it, `used` when it had been taken before, or null when
   * there is no such code. Not checked: expiry, origin, address (the caller checks the row it got;
   * a code presented wrongly is spent all the same).
   */
  take(codeHash: string, nowMs: number): Promise<HandoffRecord | 'used' | null>;
  /** Records that the code taken by `take` was redeemed (redeemed_at) with its `handoff_redeemed` event, in one transaction. */
  confirm(codeHash: string, nowMs: number, event: AuthEventInput): Promise<void>;
  /** The origins that redeemed a code of `sid` (they hold a cookie of the session), oldest first. */
  redeemedOrigins(sid: string): Promise<string[]>;
}

interface HandoffRow {
  code_hash: string;
  sid: string;
  target_origin: string;
  client_ip: string;
  claims: Record<string, unknown>;
  created_at: Date;
  expires_at: Date;
}

/** Unused codes are kept this long after they expire (for a late "expired" answer), then deleted at the next issue. */
const UNUSED_KEEP_SECONDS = 3600;

/** SQL for `sso_handoffs`, all parameterised; connection failures become ERR_STORE_UNAVAILABLE (503). */
export function createHandoffsRepo(pool: pg.Pool): HandoffsRepo {
  return {
    async issue(input) {
      await inTransaction(pool, async (client) => {
        await client.query(`DELETE FROM sso_handoffs WHERE used_at IS NULL AND expires_at < $1`, [new Date(input.nowMs - UNUSED_KEEP_SECONDS * 1000)]);
        await client.query(
          `INSERT INTO sso_handoffs (code_hash, sid, target_origin, client_ip, claims, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [input.codeHash, input.sid, input.targetOrigin, input.clientIp, JSON.stringify(input.claims), new Date(input.nowMs), new Date(input.nowMs + input.ttlSeconds * 1000)],
        );
        await insertAuthEvent(client, input.event);
      });
    },
    async take(codeHash, nowMs) {
      // A concurrent second UPDATE waits for the first, then re-reads used_at and matches nothing.
      const taken = await queryStore<HandoffRow>(
        pool,
        `UPDATE sso_handoffs SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL
         RETURNING code_hash, sid, target_origin, client_ip, claims, created_at, expires_at`,
        [codeHash, new Date(nowMs)],
      );
      const row = taken.rows[0];
      if (row !== undefined) {
        return {
          codeHash: row.code_hash,
          sid: row.sid,
          targetOrigin: row.target_origin,
          clientIp: row.client_ip,
          claims: row.claims,
          createdAt: row.created_at,
          expiresAt: row.expires_at,
        };
      }
      const known = await queryStore<{ one: number }>(pool, 'SELECT 1 AS one FROM sso_handoffs WHERE code_hash = $1', [codeHash]);
      return known.rows.length > 0 ? 'used' : null;
    },
    async confirm(codeHash, nowMs, event) {
      await inTransaction(pool, async (client) => {
        await client.query('UPDATE sso_handoffs SET redeemed_at = $2 WHERE code_hash = $1', [codeHash, new Date(nowMs)]);
        await insertAuthEvent(client, event);
      });
    },
    async redeemedOrigins(sid) {
      const result = await queryStore<{ target_origin: string }>(
        pool,
        `SELECT target_origin FROM sso_handoffs WHERE sid = $1 AND redeemed_at IS NOT NULL GROUP BY target_origin ORDER BY min(redeemed_at)`,
        [sid],
      );
      return result.rows.map((r) => r.target_origin);
    },
  };
}
