/**
 * Revoked sessions for the gate on njs >= 0.8 (issue 9): the auth service's answer to
 * `GET /auth/revocations?since=<ms>`, read by revocations.ts (js_periodic, one worker) into the
 * shared dict `gate_revoked`, which the gate consults after a token verifies (decide.ts `revoked`).
 * The same wire format is written by auth-service/src/routes/revocations.ts; this file is the contract.
 */

/** The JSON body of `GET /auth/revocations`. */
export interface RevocationsReply {
  /**
   * Where the next poll continues (`since`), milliseconds since the epoch on the database's clock:
   * the time of the query, or with `more` the revocation time of the last sid listed (at least
   * `since` + 1, so that the feed always moves on).
   */
  until: number;
  /** True when the list was cut at the service's page size: poll again from `until` at once. */
  more: boolean;
  /** Sessions revoked at or after `since` (bounded to the last token lifetime + leeway). */
  revoked: RevokedEntry[];
}

export interface RevokedEntry {
  sid: string;
  /**
   * Milliseconds until every token of this session has expired (revocation time + token TTL +
   * leeway - now): how long the gate must keep refusing it. After that the token's own `exp` does.
   */
  ttl: number;
}

/** The key under which the poller keeps its cursor in the dict. No sid can hold '#' (base64url). */
export const CURSOR_KEY = '#since';

/**
 * How far each poll reaches back before the previous answer's `until`: a revocation whose
 * transaction started before that query but committed after it carries an earlier `revoked_at`.
 */
export const CURSOR_OVERLAP_MS = 5000;

/** What the sessions table allows for `sid` (db/migrations/003_sessions_audit.sql), in base64url. */
export function isSid(value: unknown): value is string {
  // A search for a bad character, not /^[…]+$/: njs's regex engine (PCRE) lets `$` match before a
  // final "\n" (the njs runner's cases caught it).
  return typeof value === 'string' && value.length >= 16 && value.length <= 128 && value.search(/[^A-Za-z0-9_-]/) < 0;
}

/**
 * Parses and checks a reply body. Returns null for anything that is not a RevocationsReply (the
 * poller then keeps what it has); entries whose sid or ttl is unusable are dropped, the others kept.
 * Not checked: that the sids exist, or that `until` is not in the future.
 */
export function parseRevocationsReply(body: string): RevocationsReply | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const reply = parsed as { until?: unknown; more?: unknown; revoked?: unknown };
  if (typeof reply.until !== 'number' || !(reply.until > 0 && reply.until < 1e14)) return null;
  if (typeof reply.more !== 'boolean' || !Array.isArray(reply.revoked)) return null;
  const entries: RevokedEntry[] = [];
  for (let i = 0; i < reply.revoked.length; i++) {
    const e = reply.revoked[i] as { sid?: unknown; ttl?: unknown } | null;
    if (typeof e !== 'object' || e === null || !isSid(e.sid)) continue;
    const ttl = e.ttl;
    if (typeof ttl !== 'number' || !(ttl >= 1 && ttl <= 1e9)) continue;
    entries.push({ sid: e.sid, ttl: ttl - (ttl % 1) });
  }
  return { until: reply.until, more: reply.more, revoked: entries };
}

/** The `since` of the next poll: `until` itself to fetch the next page, else `until` minus the overlap. */
export function nextCursor(reply: RevocationsReply): number {
  return reply.more ? reply.until : reply.until - CURSOR_OVERLAP_MS;
}

/** The URL of one poll: `base` (the service's /auth/revocations) with `since` when a cursor is known. */
export function revocationsUrl(base: string, since: number | undefined): string {
  return since === undefined ? base : base + '?since=' + since;
}
