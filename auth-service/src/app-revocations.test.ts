/**
 * GET /auth/revocations as the app serves it (real HTTP, real PostgreSQL): what nginx's revocation
 * poller on njs >= 0.8 reads (njs/src/revocations.ts). The query itself is in storage/sessions-repo.test.ts.
 */
import { describe, expect, test } from '@jest/globals';
import { nextCursor, parseRevocationsReply } from '../../njs/src/core/revocations.js';
import { appsOnTestDatabase, decodeSegment, setCookies, type TestApp } from './app.testkit.js';
import { REVOCATIONS_PAGE } from './routes/revocations.js';
import { createSessionsRepo } from './storage/sessions-repo.js';


const apps = appsOnTestDatabase((db) => db.createUser('alice', 'correct horse battery', { groups: ['staff'] }));
const start = apps.start;

async function signIn(app: TestApp): Promise<string> {
  const token = setCookies(await app.login('alice', 'correct horse battery'))
    .find((c) => c.startsWith('gw_session='))!
    .split(';')[0]!
    .slice('gw_session='.length);
  return decodeSegment(token.split('.')[1]!).sid as string;
}

describe('/auth/revocations', () => {
  test('lists a revoked session with the time left until its last token expires (TTL + leeway), and not a live one', async () => {
    const app = await start({ env: { SESSION_TOKEN_TTL_SECONDS: '120', SESSION_LEEWAY_SECONDS: '10' } });
    const revoked = await signIn(app);
    const live = await signIn(app);
    await createSessionsRepo(apps.db.pool).revoke(revoked, { event: 'revoke', reason: 'test' });
    const res = await app.request('GET', '/auth/revocations', { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const reply = parseRevocationsReply(res.body)!;
    expect(reply).not.toBeNull();
    expect(reply.more).toBe(false);
    const sids = reply.revoked.map((e) => e.sid);
    expect(sids).toContain(revoked);
    expect(sids).not.toContain(live);
    const entry = reply.revoked.find((e) => e.sid === revoked)!;
    expect(entry.ttl).toBeGreaterThan(120_000);
    expect(entry.ttl).toBeLessThanOrEqual(130_000);
    // From the reply's cursor on, it is not listed again (the poller already has it).
    const next = parseRevocationsReply((await app.request('GET', `/auth/revocations?since=${reply.until + 1}`)).body)!;
    expect(next.revoked.map((e) => e.sid)).not.toContain(revoked);
    expect(next.until).toBeGreaterThanOrEqual(reply.until);
  });

  test('a full page of sessions revoked in one millisecond still moves the cursor on, so a later revocation is seen', async () => {
    const app = await start();
    // One statement, one now(): 2,001 sessions revoked at the same instant (one user's sign-out everywhere).
    await apps.db.pool.query(
      `INSERT INTO sessions (sid, username, user_key, source, src, idle_expires_at, expires_at, client_ip, revoked_at, revoke_reason)
       SELECT 'bulk' || lpad(g::text, 12, '0') || 'xxxxxx', 'bulk', 'local:bulk', 'local', 'local',
              now() + interval '1 hour', now() + interval '1 hour', '127.0.0.1', now(), 'test'
       FROM generate_series(1, ${REVOCATIONS_PAGE + 1}) g`,
    );
    await new Promise((r) => setTimeout(r, 5));
    const later = await signIn(app);
    await createSessionsRepo(apps.db.pool).revoke(later, { event: 'revoke', reason: 'test' });
    let since: number | undefined;
    const seen = new Set<string>();
    for (let poll = 0; poll < 5 && !seen.has(later); poll++) {
      const reply = parseRevocationsReply((await app.request('GET', '/auth/revocations' + (since === undefined ? '' : `?since=${since}`))).body)!;
      for (const e of reply.revoked) seen.add(e.sid);
      if (since !== undefined) expect(reply.until).toBeGreaterThan(since);
      since = nextCursor(reply);
    }
    expect(seen.has(later)).toBe(true);
  });

  test.each(['abc', '-1', '1.5', '1e12', '9999999999999999'])('answers 400 JSON for since=%s', async (since) => {
    const app = await start();
    const res = await app.request('GET', `/auth/revocations?since=${encodeURIComponent(since)}`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'bad-request' });
  });

  test('answers 503 JSON without a store, which the poller treats as "keep what you have"', async () => {
    const app = await start({ deps: { storage: undefined } });
    const res = await app.request('GET', '/auth/revocations');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ error: 'store-unavailable' });
    expect(parseRevocationsReply(res.body)).toBeNull();
  });
});
