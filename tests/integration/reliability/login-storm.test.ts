/**
 * Issue 11 (4), the correctness half: 50 concurrent sign-ins at full PBKDF2 cost while signed-in
 * traffic runs. Every sign-in answer is a 302 (signed in) or a clear refusal: 429 (nginx's
 * limit_req or the rate limiter) or 503 with Retry-After (the hashing cap, LOGIN_HASH_QUEUE full);
 * never another 5xx. Signed-in traffic has 0 failures meanwhile. The same storm straight at the
 * auth service (past nginx's limit_req) shows the cap itself: at most LOGIN_HASH_CONCURRENCY +
 * LOGIN_HASH_QUEUE are admitted, the rest are refused at once. The throughput figure (>= 90 % of
 * the no-storm rate) is measured by `make bench` (bench/login-storm.ts), not here.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY, HASHING_BUSY_MESSAGE } from '../../../auth-service/src/passwords/index.js';
import { startLoad, untilAnswered } from '../../support/load.js';
import { hiddenFields, rawRequest, setCookies, stackTest, startStack, type HttpResult, type Stack } from '../../support/stack.js';

const PASSWORD = 'login storm password 50';
const STORM = 50;
const CONCURRENCY = 1;
const QUEUE = 8;

/** A form sign-in against `port` (nginx or the auth service itself), as a browser on that origin does. */
async function signIn(port: number, username: string): Promise<HttpResult> {
  const form = await rawRequest(port, 'GET', '/login', { accept: 'text/html' });
  const csrf = setCookies(form).map((c) => c.split(';')[0]!).find((c) => c.startsWith('gw_csrf='));
  if (csrf === undefined) return form;
  const body = new URLSearchParams({ ...hiddenFields(form.body), username, password: PASSWORD }).toString();
  return rawRequest(port, 'POST', '/login', { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: csrf, origin: `http://127.0.0.1:${port}` }, body);
}

const countBy = (results: HttpResult[]) => results.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});

describe('login storm', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({
      authProcess: true,
      env: { LOGIN_HASH_CONCURRENCY: String(CONCURRENCY), LOGIN_HASH_QUEUE: String(QUEUE), LOGIN_RATE_LIMIT_IP: '100000/60', LOGIN_RATE_LIMIT_USER: '100000/60', LOGIN_RATE_LIMIT_USER_IP: '100000/60' },
    });
    // One full-cost hash for all (same password, so the storm pays full cost per sign-in; setup does not).
    const passwordHash = await createPasswordHasher(DEFAULT_PASSWORD_POLICY).hash(PASSWORD);
    for (let i = 0; i < STORM; i++) await stack.repo.create({ username: `ensign${i}`, passwordHash, groups: ['Federation'], email: null, fullName: null });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test(`${STORM} concurrent sign-ins: only 302, 429 or 503 + Retry-After; signed-in traffic has 0 failures`, async () => {
    const { session } = await stack.login('ensign0', PASSWORD, '/');
    expect(session).not.toBeNull();
    const load = startLoad({ port: stack.proxyPort, path: '/reports/live', headers: { cookie: String(session), accept: 'text/html' }, connections: 4 });
    let stopped = false;
    try {
      await untilAnswered(load, 100);
      // Through nginx, as users arrive.
      const viaNginx = await Promise.all(Array.from({ length: STORM }, (_, i) => signIn(stack.proxyPort, `ensign${i}`)));
      // Straight at the service: nothing in front of the cap.
      const direct = await Promise.all(Array.from({ length: STORM }, (_, i) => signIn(stack.authPort, `ensign${i}`)));
      const result = await load.stop();
      stopped = true;

      const statuses = { viaNginx: countBy(viaNginx), direct: countBy(direct) };
      console.log(`login storm: ${JSON.stringify(statuses)}; signed-in load ${result.total} requests, ${result.failed} failed`);
      for (const r of [...viaNginx, ...direct]) expect([302, 429, 503]).toContain(r.status);
      expect(statuses.viaNginx[302]).toBeGreaterThan(0);
      // The cap: at most CONCURRENCY + QUEUE hashed at once; the others refused with when to retry.
      expect(statuses.direct[302]).toBeGreaterThanOrEqual(CONCURRENCY);
      expect(statuses.direct[302]).toBeLessThanOrEqual(STORM);
      expect(statuses.direct[503]).toBeGreaterThanOrEqual(STORM - (CONCURRENCY + QUEUE) * 2);
      for (const r of [...viaNginx, ...direct].filter((x) => x.status === 503)) {
        expect(r.headers['retry-after']).toBe('2');
        expect(r.body).toContain(HASHING_BUSY_MESSAGE.replace(/'/g, '&#39;'));
      }
      // No reload here, so not even a resent request.
      expect({ failed: result.failed, retried: result.retried, errors: result.errors, samples: result.samples }).toEqual({ failed: 0, retried: 0, errors: {}, samples: [] });
      expect(stack.authLogs()).not.toMatch(/"event":"internal_error"/);
      expect(stack.authLogs()).toMatch(/"reason":"hashing-busy"/);
      // Still up and signing in.
      expect((await stack.login('ensign1', PASSWORD, '/')).res.status).toBe(302);
    } finally {
      if (!stopped) await load.stop();
    }
  }, 90_000);
});
