import { describe, expect, it } from '@jest/globals';
import { clientBucket, createLoginRateLimiter, USER_BACKOFF_MAX_SECONDS } from './login-rate-limiter.js';

const HIGH = { points: 100_000, durationSeconds: 600 };

function limiterWithClock(rules: Partial<Parameters<typeof createLoginRateLimiter>[0]>) {
  let nowMs = 1_000_000;
  const limiter = createLoginRateLimiter({ ip: HIGH, user: HIGH, userIp: HIGH, ...rules }, () => nowMs);
  return { limiter, advance: (ms: number) => (nowMs += ms) };
}

async function fail(limiter: ReturnType<typeof createLoginRateLimiter>, user: string, ip: string): Promise<void> {
  expect(await limiter.admit(user, ip)).toEqual({ allowed: true });
  await limiter.recordFailure(user, ip);
}

describe('clientBucket', () => {
  it.each([
    ['an IPv4 address stays as it is', '192.0.2.7', '192.0.2.7'],
    ['an IPv6 address becomes its /64', '2001:db8:1:2:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['a compressed IPv6 address', '2001:db8::1', '2001:db8:0:0::/64'],
    ['another interface id in the same /64', '2001:db8::ffff:1', '2001:db8:0:0::/64'],
    ['upper-case hex', '2001:DB8:0:0:1::', '2001:db8:0:0::/64'],
    ['a zone id', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['loopback', '::1', '0:0:0:0::/64'],
    ['an embedded IPv4 tail', '64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
  ])('%s', (_name, ip, bucket) => {
    expect(clientBucket(ip)).toBe(bucket);
  });
});

describe('login rate limiter', () => {
  it('throttles the (user, client) pair, while the right password from another client goes through', async () => {
    const { limiter } = limiterWithClock({ userIp: { points: 5, durationSeconds: 300 }, user: { points: 10, durationSeconds: 300 } });
    for (let i = 0; i < 5; i++) await fail(limiter, 'kirk', '203.0.113.66');
    expect(await limiter.admit('kirk', '203.0.113.66')).toEqual({ allowed: false, scope: 'user-ip', retryAfterSeconds: 300 });
    expect(await limiter.admit('kirk', '198.51.100.7')).toEqual({ allowed: true });
  });

  it('counts a whole IPv6 /64 as one client', async () => {
    const { limiter } = limiterWithClock({ userIp: { points: 2, durationSeconds: 300 } });
    await fail(limiter, 'kirk', '2001:db8:1:2::1');
    await fail(limiter, 'kirk', '2001:db8:1:2::2');
    expect(await limiter.admit('kirk', '2001:db8:1:2:ffff::3')).toMatchObject({ allowed: false, scope: 'user-ip' });
    expect(await limiter.admit('kirk', '2001:db8:1:3::1')).toEqual({ allowed: true });
  });

  it.each([
    ['a dotted capital I', 'kİrk'],
    ['fullwidth letters', 'ｋｉｒｋ'],
    ['upper case', 'KIRK'],
  ])('counts %s under the same key as the users table (%s)', async (_name, spelling) => {
    const { limiter } = limiterWithClock({ userIp: { points: 2, durationSeconds: 300 } });
    await fail(limiter, 'kİrk', '192.0.2.1');
    await fail(limiter, 'KİRK', '192.0.2.1');
    // kİrk and kirk are different keys (and different users); the others fold onto their own key.
    const expected = spelling === 'kİrk' ? { allowed: false } : { allowed: true };
    expect(await limiter.admit(spelling, '192.0.2.1')).toMatchObject(expected);
  });

  it('slows a guess spread over many clients with a per-user backoff, but never refuses a clean client', async () => {
    const { limiter, advance } = limiterWithClock({ userIp: { points: 5, durationSeconds: 300 }, user: { points: 4, durationSeconds: 300 } });
    const bots = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
    for (const bot of bots) await fail(limiter, 'kirk', bot);
    // 4 failures reach the threshold: the next failure is allowed only 1 s after the latest.
    expect(await limiter.admit('kirk', '10.0.0.1')).toEqual({ allowed: false, scope: 'user', retryAfterSeconds: 1 });
    advance(1000);
    await fail(limiter, 'kirk', '10.0.0.1');
    expect(await limiter.admit('kirk', '10.0.0.2')).toEqual({ allowed: false, scope: 'user', retryAfterSeconds: 2 });
    advance(2000);
    await fail(limiter, 'kirk', '10.0.0.2');
    expect(await limiter.admit('kirk', '10.0.0.3')).toEqual({ allowed: false, scope: 'user', retryAfterSeconds: 4 });
    // The real user, from a client that has not failed, is let through at every point.
    expect(await limiter.admit('kirk', '192.0.2.50')).toEqual({ allowed: true });
    // Another username is not affected.
    expect(await limiter.admit('spock', '10.0.0.3')).toEqual({ allowed: true });
  });

  it(`caps the backoff at ${USER_BACKOFF_MAX_SECONDS} s and forgets the failures after the user window`, async () => {
    const { limiter, advance } = limiterWithClock({ user: { points: 1, durationSeconds: 300 } });
    for (let i = 0; i < 12; i++) {
      advance(USER_BACKOFF_MAX_SECONDS * 1000);
      await fail(limiter, 'kirk', '10.0.0.9');
    }
    expect(await limiter.admit('kirk', '10.0.0.9')).toEqual({ allowed: false, scope: 'user', retryAfterSeconds: USER_BACKOFF_MAX_SECONDS });
    advance(300_000);
    expect(await limiter.admit('kirk', '10.0.0.9')).toEqual({ allowed: true });
  });

  it('a success clears the pair, so the user is not in backoff from the client they signed in from', async () => {
    const { limiter } = limiterWithClock({ user: { points: 1, durationSeconds: 300 } });
    await fail(limiter, 'kirk', '192.0.2.9');
    expect(await limiter.admit('kirk', '192.0.2.9')).toMatchObject({ allowed: false, scope: 'user' });
    await limiter.recordSuccess('kirk', '192.0.2.9');
    expect(await limiter.admit('kirk', '192.0.2.9')).toEqual({ allowed: true });
  });

  it('still counts every attempt per client', async () => {
    const { limiter } = limiterWithClock({ ip: { points: 2, durationSeconds: 60 } });
    await limiter.admit('a', '192.0.2.3');
    await limiter.admit('b', '192.0.2.3');
    expect(await limiter.admit('c', '192.0.2.3')).toMatchObject({ allowed: false, scope: 'ip' });
  });
});
