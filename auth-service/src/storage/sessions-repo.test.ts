import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { sessionUserKey } from '../services/session-identity.js';
import { createAuditRepo, type AuditRepo } from './audit-repo.js';
import { createPool, runMigrations } from './db.js';
import { createSessionsRepo, type OpenSessionInput, type SessionsRepo } from './sessions-repo.js';

let database: FreshDatabase;
let pool: pg.Pool;
let sessions: SessionsRepo;
let audit: AuditRepo;

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 4 });
  await runMigrations(pool);
  sessions = createSessionsRepo(pool);
  audit = createAuditRepo(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

let counter = 0;
function session(overrides: Partial<OpenSessionInput> = {}): OpenSessionInput {
  counter += 1;
  return {
    sid: `sid-${String(counter).padStart(4, '0')}-abcdefghijklmnop`,
    username: 'Kirk',
    userKey: sessionUserKey('local', 'Kirk', 'uuid-1'),
    source: 'local',
    src: 'local',
    clientIp: '192.0.2.7',
    userAgent: 'Mozilla/5.0',
    groups: ['Federation', 'Bridge'],
    idpSid: null,
    nowMs: Date.now(),
    idleSeconds: 3600,
    maxSeconds: 43_200,
    requestId: 'req-1',
    ...overrides,
  };
}

async function eventsOf(sid: string): Promise<Array<{ event: string; reason: string | null }>> {
  const r = await pool.query<{ event: string; reason: string | null }>('SELECT event, reason FROM auth_events WHERE sid = $1 ORDER BY id', [sid]);
  return r.rows;
}

describe('sessions repo on PostgreSQL', () => {
  it('opens a session with both lifetimes and its login_success event in one go', async () => {
    const input = session({ nowMs: Date.UTC(2026, 0, 1, 8) });
    await sessions.open(input);
    const row = await sessions.find(input.sid);
    expect(row).toMatchObject({
      sid: input.sid,
      username: 'Kirk',
      userKey: 'local:kirk',
      source: 'local',
      clientIp: '192.0.2.7',
      userAgent: 'Mozilla/5.0',
      groups: ['Federation', 'Bridge'],
      revokedAt: null,
      revokeReason: null,
    });
    expect(row!.createdAt.toISOString()).toBe('2026-01-01T08:00:00.000Z');
    expect(row!.idleExpiresAt.toISOString()).toBe('2026-01-01T09:00:00.000Z');
    expect(row!.expiresAt.toISOString()).toBe('2026-01-01T20:00:00.000Z');
    expect(await eventsOf(input.sid)).toEqual([{ event: 'login_success', reason: null }]);
  });

  it('writes neither the session nor the event when the event cannot be written (same transaction)', async () => {
    // A request id longer than the column allows fails the event insert after the session insert.
    const input = session();
    await pool.query('ALTER TABLE auth_events ADD CONSTRAINT test_refuse CHECK (request_id <> $$refuse-me$$)');
    try {
      await expect(sessions.open({ ...input, requestId: 'refuse-me' })).rejects.toThrow();
    } finally {
      await pool.query('ALTER TABLE auth_events DROP CONSTRAINT test_refuse');
    }
    expect(await sessions.find(input.sid)).toBeNull();
    expect(await eventsOf(input.sid)).toEqual([]);
  });

  it('keeps at most 256 characters of the user agent and of the displayed username', async () => {
    const input = session({ userAgent: 'A'.repeat(5000), username: 'u'.repeat(400) });
    await sessions.open(input);
    expect((await sessions.find(input.sid))!.userAgent).toBe('A'.repeat(256));
    expect((await sessions.find(input.sid))!.username).toBe('u'.repeat(256));
  });

  it('caps the idle expiry at the absolute one', async () => {
    const input = session({ idleSeconds: 7200, maxSeconds: 600 });
    await sessions.open(input);
    const row = (await sessions.find(input.sid))!;
    expect(row.idleExpiresAt.getTime()).toBe(row.expiresAt.getTime());
  });

  it('revokes one session once: the first reason stays and only one event is written', async () => {
    const input = session();
    await sessions.open(input);
    const first = await sessions.revoke(input.sid, { event: 'logout', reason: 'logout', requestId: 'r2' });
    expect(first?.revokedAt).toBeInstanceOf(Date);
    const again = await sessions.revoke(input.sid, { event: 'revoke', reason: 'sessions-cli' });
    expect(again?.revokeReason).toBe('logout');
    expect(await eventsOf(input.sid)).toEqual([
      { event: 'login_success', reason: null },
      { event: 'logout', reason: 'logout' },
    ]);
  });

  it('answers null for an unknown sid', async () => {
    expect(await sessions.revoke('no-such-session-id-at-all', { event: 'revoke', reason: 'x' })).toBeNull();
  });

  it('revokes every live session of one user and no one else', async () => {
    const spock = [session({ username: 'Spock', userKey: 'local:spock' }), session({ username: 'SPOCK', userKey: 'local:spock' })];
    const other = session({ username: 'Uhura', userKey: 'local:uhura' });
    for (const s of [...spock, other]) await sessions.open(s);
    expect(await sessions.revokeUser('local:spock', { event: 'revoke', reason: 'sign-out-everywhere' })).toBe(2);
    expect(await sessions.revokeUser('local:spock', { event: 'revoke', reason: 'again' })).toBe(0);
    expect((await sessions.find(other.sid))!.revokedAt).toBeNull();
    for (const s of spock) expect(await eventsOf(s.sid)).toContainEqual({ event: 'revoke', reason: 'sign-out-everywhere' });
  });

  it('revokes the sessions a provider session id names, for that source only', async () => {
    const a = session({ src: 'oidc', source: 'oidc', userKey: 'oidc:sub-1', idpSid: 'op-sid-1' });
    const b = session({ src: 'azure', source: 'oidc', userKey: 'azure:sub-1', idpSid: 'op-sid-1' });
    await sessions.open(a);
    await sessions.open(b);
    expect(await sessions.revokeByIdpSid('oidc', 'op-sid-1', { event: 'logout', reason: 'frontchannel' })).toBe(1);
    expect((await sessions.find(b.sid))!.revokedAt).toBeNull();
  });

  it('lists live sessions newest first, and ended ones only when asked', async () => {
    const now = Date.now();
    const live = session({ username: 'chekov', userKey: 'local:chekov', nowMs: now - 1000 });
    const expired = session({ username: 'chekov', userKey: 'local:chekov', nowMs: now - 100_000_000 });
    const newer = session({ username: 'chekov', userKey: 'local:chekov', nowMs: now });
    for (const s of [live, expired, newer]) await sessions.open(s);
    expect((await sessions.list({ userKey: 'local:chekov', nowMs: now })).map((s) => s.sid)).toEqual([newer.sid, live.sid]);
    expect((await sessions.list({ userKey: 'local:chekov', nowMs: now, includeEnded: true })).map((s) => s.sid)).toEqual([newer.sid, live.sid, expired.sid]);
  });

  it('feeds the revocations of the last window, oldest first, from `since`, each with the ms left of its window', async () => {
    const how = { event: 'revoke' as const, reason: 'test' };
    const before = (await sessions.revokedSince({ sinceMs: null, windowSeconds: 330, limit: 10_000 })).nowMs;
    const [first, second, old, live] = [session(), session(), session(), session()];
    for (const s of [first, second, old, live]) await sessions.open(s);
    await sessions.revoke(first.sid, how);
    await sessions.revoke(second.sid, how);
    await sessions.revoke(old.sid, how);
    // Revoked longer ago than the window: every token of it has expired, so it is not listed.
    await pool.query("UPDATE sessions SET revoked_at = now() - interval '331 seconds' WHERE sid = $1", [old.sid]);
    const found = await sessions.revokedSince({ sinceMs: before, windowSeconds: 330, limit: 10_000 });
    expect(found.sessions.map((s) => s.sid)).toEqual([first.sid, second.sid]);
    expect(found.nowMs).toBeGreaterThanOrEqual(before);
    for (const s of found.sessions) {
      expect(s.revokedAtMs).toBeGreaterThanOrEqual(before);
      expect(s.ttlMs).toBeGreaterThan(320_000);
      expect(s.ttlMs).toBeLessThanOrEqual(330_000);
    }
    expect((await sessions.revokedSince({ sinceMs: before, windowSeconds: 330, limit: 1 })).sessions.map((s) => s.sid)).toEqual([first.sid]);
    expect((await sessions.revokedSince({ sinceMs: found.nowMs + 1, windowSeconds: 330, limit: 10_000 })).sessions).toEqual([]);
    // No `since`: the whole window, which includes these two and not the old one.
    const all = (await sessions.revokedSince({ sinceMs: null, windowSeconds: 330, limit: 10_000 })).sessions.map((s) => s.sid);
    expect(all).toEqual(expect.arrayContaining([first.sid, second.sid]));
    expect(all).not.toContain(old.sid);
    expect(all).not.toContain(live.sid);
    // The feed's filter can use the partial index (migration 005) rather than reading every row.
    const client = await pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        "EXPLAIN SELECT sid FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= now() - interval '330 seconds' ORDER BY revoked_at LIMIT 2000",
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('sessions_revoked_at');
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });

  it('purges sessions that ended long ago and keeps the others', async () => {
    const old = session({ username: 'sulu', userKey: 'local:sulu', nowMs: Date.now() - 100 * 86_400_000, maxSeconds: 3600 });
    const live = session({ username: 'sulu', userKey: 'local:sulu' });
    await sessions.open(old);
    await sessions.open(live);
    expect(await sessions.purgeEnded(90)).toBeGreaterThanOrEqual(1);
    expect(await sessions.find(old.sid)).toBeNull();
    expect(await sessions.find(live.sid)).not.toBeNull();
  });
});

describe('auth_events is append-only', () => {
  it('refuses UPDATE, DELETE and TRUNCATE from anyone but the purge', async () => {
    await audit.record({ event: 'login_failure', username: 'mallory', reason: 'invalid' });
    await expect(pool.query("UPDATE auth_events SET reason = 'nothing happened'")).rejects.toMatchObject({ code: '42501' });
    await expect(pool.query('DELETE FROM auth_events')).rejects.toMatchObject({ code: '42501' });
    await expect(pool.query('TRUNCATE auth_events')).rejects.toMatchObject({ code: '42501' });
  });

  it('refuses a DELETE of recent rows even with the purge setting on', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL gateway.audit_purge_days = '1'");
      await expect(client.query('DELETE FROM auth_events')).rejects.toMatchObject({ code: '42501' });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });

  it('the purge deletes only events older than the retention', async () => {
    // Old rows can only come from the past; insert with an explicit time.
    await pool.query("INSERT INTO auth_events (at, event, username, reason) VALUES (now() - interval '100 days', 'login_failure', 'old', 'invalid')");
    await pool.query("INSERT INTO auth_events (at, event, username, reason) VALUES (now() - interval '89 days', 'login_failure', 'recent', 'invalid')");
    expect(await audit.purge(90)).toBe(1);
    const names = (await pool.query<{ username: string }>('SELECT username FROM auth_events')).rows.map((r) => r.username);
    expect(names).toContain('recent');
    expect(names).not.toContain('old');
    // The setting ended with the purge's transaction.
    await expect(pool.query('DELETE FROM auth_events')).rejects.toMatchObject({ code: '42501' });
  });

  it('truncates long fields instead of failing, and tails by user and time, oldest first', async () => {
    await audit.record({ event: 'login_failure', username: 'x'.repeat(1000), userKey: 'local:tail', reason: 'r'.repeat(1000) });
    await audit.record({ event: 'logout', username: 'tail', userKey: 'local:tail', reason: 'logout' });
    // An attempt belongs to no account: it is found by the name typed, in any case.
    await audit.record({ event: 'rate_limited', username: 'TAIL', reason: 'rate-limited-ip' });
    // Another source's account of the same name is someone else.
    await audit.record({ event: 'logout', username: 'tail', userKey: 'tableau:tail', reason: 'logout' });
    const rows = await audit.tail({ user: { userKey: 'local:tail', nameKey: 'tail' }, limit: 10 });
    expect(rows.map((r) => r.event)).toEqual(['login_failure', 'logout', 'rate_limited']);
    expect(rows[0]!.username).toHaveLength(256);
    expect(rows[0]!.reason).toHaveLength(200);
    expect(await audit.tail({ user: { userKey: 'local:tail', nameKey: 'tail' }, limit: 1 })).toHaveLength(1);
    expect(await audit.tail({ user: { userKey: 'local:tail', nameKey: 'tail' }, since: new Date(Date.now() + 60_000), limit: 10 })).toEqual([]);
  });
});

describe('the sealed refresh token and its lease', () => {
  const oidcSession = () => session({ src: 'azure', source: 'oidc', userKey: `azure:sub-${counter + 1}`, idpRefresh: 'sealed-refresh-value' });
  const leaseOf = async (sid: string) => (await pool.query<{ idp_refresh_lease: Date | null }>('SELECT idp_refresh_lease FROM sessions WHERE sid = $1', [sid])).rows[0]!.idp_refresh_lease;

  it('keeps the sealed value, replaces it on a renewal that brings one, and drops it when the session ends', async () => {
    const input = oidcSession();
    await sessions.open(input);
    expect((await sessions.find(input.sid))!.idpRefresh).toBe('sealed-refresh-value');
    const renew = (idpRefresh?: string) =>
      sessions.renew({ sid: input.sid, nowMs: Date.now(), idleSeconds: 60, requestId: 'r', clientIp: null, decide: async (row) => ({ renew: true, groups: row.groups, idpRefresh, value: null }) });
    await renew();
    expect((await sessions.find(input.sid))!.idpRefresh).toBe('sealed-refresh-value');
    await renew('rotated-value');
    expect((await sessions.find(input.sid))!.idpRefresh).toBe('rotated-value');
    await sessions.revoke(input.sid, { event: 'logout', reason: 'logout' });
    expect((await sessions.find(input.sid))!.idpRefresh).toBeNull();
  });

  it('a renewal that ends the session drops it too; a stale decision writes nothing', async () => {
    const input = oidcSession();
    await sessions.open(input);
    expect(await sessions.renew({ sid: input.sid, nowMs: Date.now(), idleSeconds: 60, requestId: 'r', clientIp: null, decide: async () => ({ renew: false, stale: true }) })).toEqual({ renew: false, stale: true });
    expect(await eventsOf(input.sid)).toEqual([{ event: 'login_success', reason: null }]);
    await sessions.renew({ sid: input.sid, nowMs: Date.now(), idleSeconds: 60, requestId: 'r', clientIp: null, decide: async () => ({ renew: false, reason: 'idp-refresh-refused', end: true }) });
    expect(await sessions.find(input.sid)).toMatchObject({ revokeReason: 'idp-refresh-refused', idpRefresh: null });
  });

  it('the lease is one holder at a time: taken (with the row), busy while held, free again once released, ended by the renewal, or run out', async () => {
    const input = oidcSession();
    await sessions.open(input);
    expect(await sessions.leaseRefresh(input.sid, 60)).toMatchObject({ sid: input.sid, idpRefresh: 'sealed-refresh-value' });
    expect(await sessions.leaseRefresh(input.sid, 60)).toBe('busy');
    await sessions.releaseRefresh(input.sid);
    expect(await sessions.leaseRefresh(input.sid, 60)).toMatchObject({ sid: input.sid });
    await sessions.renew({ sid: input.sid, nowMs: Date.now(), idleSeconds: 60, requestId: 'r', clientIp: null, leased: true, decide: async (row) => ({ renew: true, groups: row.groups, value: null }) });
    expect(await leaseOf(input.sid)).toBeNull();
    await pool.query("UPDATE sessions SET idp_refresh_lease = now() - interval '1 second' WHERE sid = $1", [input.sid]);
    expect(await sessions.leaseRefresh(input.sid, 60)).toMatchObject({ sid: input.sid });
    expect(await sessions.leaseRefresh('no-such-session-0000000', 60)).toBeNull();
  });
});
