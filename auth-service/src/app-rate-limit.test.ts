import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { FAST_POLICY, openTestDatabase, startTestApp, type HttpResult, type TestApp, type TestDatabase } from './app.testkit.js';
import { createPasswordHasher, type PasswordHasher } from './passwords/index.js';

let db: TestDatabase;
let app: TestApp | undefined;

beforeAll(async () => {
  db = await openTestDatabase();
  await db.createUser('bob', 'bobs password');
  await db.createUser('carol', 'carols password');
});

afterEach(async () => {
  await app?.close();
  app = undefined;
});

afterAll(async () => {
  await db?.close();
});

/** The real hasher, counting how often a password is checked (to prove limits reject before hashing). */
function countingHasher(): { hasher: PasswordHasher; checks: () => number } {
  const inner = createPasswordHasher(FAST_POLICY);
  let checks = 0;
  return {
    checks: () => checks,
    hasher: {
      ...inner,
      verify: (pw, stored) => {
        checks += 1;
        return inner.verify(pw, stored);
      },
      verifyDummy: (pw) => {
        checks += 1;
        return inner.verifyDummy(pw);
      },
    },
  };
}

const HIGH = '100000/60';

async function start(limits: { ip?: string; user?: string; userIp?: string }, hasher?: PasswordHasher): Promise<TestApp> {
  app = await startTestApp({
    usersRepo: db.repo,
    hasher,
    env: { LOGIN_RATE_LIMIT_IP: limits.ip ?? HIGH, LOGIN_RATE_LIMIT_USER: limits.user ?? HIGH, LOGIN_RATE_LIMIT_USER_IP: limits.userIp ?? HIGH },
  });
  return app;
}

function from(ip: string) {
  return { headers: { 'x-forwarded-for': ip } };
}

function expectRateLimited(res: HttpResult, maxSeconds: number): void {
  expect(res.status).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
  expect(res.body).toContain('role="alert">Too many sign-in attempts. Try again in ');
  expect(res.body).toContain('<a href="/login">Back to sign-in</a>');
  expect(res.headers['set-cookie']).toBeUndefined();
}

describe('per-IP limit (every attempt counts)', () => {
  test('answers 429 with Retry-After once an address has used its attempts, without checking the password', async () => {
    const { hasher, checks } = countingHasher();
    const a = await start({ ip: '3/300' }, hasher);
    expect((await a.login('bob', 'bobs password', from('192.0.2.1'))).status).toBe(302);
    expect((await a.login('carol', 'wrong', from('192.0.2.1'))).status).toBe(401);
    expect((await a.login('nobody', 'wrong', from('192.0.2.1'))).status).toBe(401);
    const checked = checks();
    const blocked = await a.login('bob', 'bobs password', from('192.0.2.1'));
    expectRateLimited(blocked, 300);
    expect(blocked.body).toContain('Try again in 5 minutes.');
    expect(checks()).toBe(checked);
    expect(a.events('auth_failure')).toContainEqual(expect.objectContaining({ user: 'bob', reason: 'rate-limited-ip' }));
  });

  test('does not affect other addresses', async () => {
    const a = await start({ ip: '1/300' });
    await a.login('bob', 'wrong', from('192.0.2.1'));
    expect((await a.login('bob', 'bobs password', from('192.0.2.1'))).status).toBe(429);
    expect((await a.login('bob', 'bobs password', from('192.0.2.2'))).status).toBe(302);
  });
});

describe('per-username limit (failures from all clients, with backoff)', () => {
  test('slows clients that failed for a username once it failed too often, counting case-insensitively', async () => {
    const a = await start({ user: '3/300' });
    expect((await a.login('bob', 'guess1', from('198.51.100.1'))).status).toBe(401);
    expect((await a.login('Bob', 'guess2', from('198.51.100.2'))).status).toBe(401);
    expect((await a.login('BOB', 'guess3', from('198.51.100.3'))).status).toBe(401);
    expectRateLimited(await a.login('bob', 'guess4', from('198.51.100.1')), 60);
    expect(a.events('auth_failure')).toContainEqual(expect.objectContaining({ user: 'bob', reason: 'rate-limited-user' }));
    // Other users are untouched.
    expect((await a.login('carol', 'carols password', from('198.51.100.4'))).status).toBe(302);
  });

  test('lets the right password through from a client that has not failed (no lockout by guessing)', async () => {
    const a = await start({ user: '3/300' });
    for (let i = 1; i <= 3; i++) expect((await a.login('bob', `guess${i}`, from(`198.51.100.${i}`))).status).toBe(401);
    expect((await a.login('bob', 'bobs password', from('198.51.100.50'))).status).toBe(302);
  });

  test('does not count successful sign-ins', async () => {
    const a = await start({ user: '2/300' });
    for (let i = 0; i < 4; i++) expect((await a.login('bob', 'bobs password')).status).toBe(302);
  });

  test('lets a client that failed try again once the backoff has passed', async () => {
    const a = await start({ user: '1/300' });
    await a.login('bob', 'wrong');
    const blocked = await a.login('bob', 'bobs password');
    expectRateLimited(blocked, 1);
    expect(blocked.body).toContain('Try again in 1 minute.');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await a.login('bob', 'bobs password')).status).toBe(302);
  });
});

describe('per-(username, IP) limit', () => {
  test('blocks the pair but not the same user from another address', async () => {
    const a = await start({ userIp: '2/300' });
    await a.login('bob', 'guess1', from('203.0.113.7'));
    await a.login('bob', 'guess2', from('203.0.113.7'));
    expectRateLimited(await a.login('bob', 'bobs password', from('203.0.113.7')), 300);
    expect(a.events('auth_failure')).toContainEqual(expect.objectContaining({ user: 'bob', reason: 'rate-limited-user-ip' }));
    expect((await a.login('bob', 'bobs password', from('203.0.113.8'))).status).toBe(302);
  });

  test('a successful sign-in from the address clears that pair’s failures', async () => {
    const a = await start({ userIp: '2/300' });
    expect((await a.login('bob', 'typo', from('203.0.113.9'))).status).toBe(401);
    expect((await a.login('bob', 'bobs password', from('203.0.113.9'))).status).toBe(302);
    expect((await a.login('bob', 'typo', from('203.0.113.9'))).status).toBe(401);
    // Without the reset this would be the pair's third failure-window attempt and be refused.
    expect((await a.login('bob', 'bobs password', from('203.0.113.9'))).status).toBe(302);
  });
});
