import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pbkdf2 } from 'node:crypto';
import pino from 'pino';
import { FAST_POLICY, openTestDatabase, type TestDatabase } from '../app.testkit.js';
import { createPasswordHasher, type PasswordHasher } from '../passwords/index.js';
import { createLocalAuthenticator } from './local.js';

/** passlib's pbkdf2_sha512 of 'correct horse battery staple' at 1,000 rounds (see password-hasher.test.ts). */
const PASSLIB_1000_ROUNDS =
  '$pbkdf2-sha512$1000$..9.ChssPU5fYHGCk6S1xg$I1ckC/ijlPJhVRjf32RXlLm7VxduFriWIR0sHIrgTi.u6S0YO5fWgk/tWaVr5DJ9jPqgaXcvhgnHQGt/22ulDg';

let db: TestDatabase;
let userId: string;

beforeAll(async () => {
  db = await openTestDatabase();
  userId = (await db.createUser('Quinn', 'quinns password', { email: 'q@example.test', fullName: 'Quinn Q', groups: ['ops'] })).id;
  await db.createUser('rita', 'ritas password');
  await db.repo.setDisabled('rita', true);
});

afterAll(async () => {
  await db?.close();
});

/** The real hasher, recording which kind of verification each attempt paid for. */
function recordingHasher(): { hasher: PasswordHasher; calls: string[] } {
  const inner = createPasswordHasher(FAST_POLICY);
  const calls: string[] = [];
  return {
    calls,
    hasher: {
      ...inner,
      verify: (pw, stored) => {
        calls.push('verify');
        return inner.verify(pw, stored);
      },
      verifyDummy: (pw) => {
        calls.push('verifyDummy');
        return inner.verifyDummy(pw);
      },
      verifyAtDummyCost: (pw, stored) => {
        calls.push('verifyAtDummyCost');
        return inner.verifyAtDummyCost(pw, stored);
      },
    },
  };
}

describe('local authenticator', () => {
  test.each([
    ['right password', 'Quinn', 'quinns password', 'success', ['verifyAtDummyCost']],
    ['username in another case', 'quinn', 'quinns password', 'success', ['verifyAtDummyCost']],
    ['wrong password', 'Quinn', 'nope', 'invalid', ['verifyAtDummyCost']],
    ['unknown user (verifies against the dummy hash, same cost)', 'nobody', 'nope', 'not-found', ['verifyDummy']],
    ['disabled user, right password (still verified)', 'rita', 'ritas password', 'disabled', ['verifyAtDummyCost']],
    ['disabled user, wrong password', 'rita', 'nope', 'invalid', ['verifyAtDummyCost']],
  ])('%s', async (_name, username, password, kind, calls) => {
    const recording = recordingHasher();
    const auth = createLocalAuthenticator({ usersRepo: db.repo, hasher: recording.hasher, logger: pino({ level: 'silent' }) });
    const outcome = await auth.authenticate({ username, password }, { requestId: 'r1' });
    expect(outcome.kind).toBe(kind);
    expect(recording.calls).toEqual(calls);
  });

  // Issue 8: a passlib hash imported at 1,000 rounds answered a wrong password far faster than an
  // unknown user (dummy at the policy's cost), which revealed the account. Counted, not timed.
  test('a wrong password for a hash imported at a lower cost costs as many PBKDF2 iterations as an unknown user', async () => {
    const iterations: number[] = [];
    const hasher = createPasswordHasher(
      { ...FAST_POLICY, algorithm: 'pbkdf2-sha512', pbkdf2Iterations: 20_000 },
      {
        pbkdf2: (pw, salt, n, len, digest) => {
          iterations.push(n);
          return new Promise((resolve, reject) => pbkdf2(pw, salt, n, len, digest, (err, key) => (err ? reject(err) : resolve(key))));
        },
      },
    );
    await db.repo.create({ username: 'imported', passwordHash: PASSLIB_1000_ROUNDS });
    const auth = createLocalAuthenticator({ usersRepo: db.repo, hasher, logger: pino({ level: 'silent' }) });
    await auth.authenticate({ username: 'warm-up', password: 'x' }, { requestId: 'r0' });
    const cost = async (username: string, password: string): Promise<[string, number]> => {
      iterations.length = 0;
      const outcome = await auth.authenticate({ username, password }, { requestId: 'r1' });
      return [outcome.kind, iterations.reduce((a, b) => a + b, 0)];
    };
    expect(await cost('nobody', 'guess')).toEqual(['not-found', 20_000]);
    expect(await cost('imported', 'guess')).toEqual(['invalid', 20_000]);
    const [kind] = await cost('imported', 'correct horse battery staple');
    expect(kind).toBe('success');
  });

  test('maps the user row to an identity with the stored username spelling', async () => {
    const auth = createLocalAuthenticator({ usersRepo: db.repo, hasher: createPasswordHasher(FAST_POLICY), logger: pino({ level: 'silent' }) });
    expect(await auth.authenticate({ username: 'QUINN', password: 'quinns password' }, { requestId: 'r2' })).toEqual({
      kind: 'success',
      identity: { sub: userId, username: 'Quinn', name: 'Quinn Q', email: 'q@example.test', emailVerified: true, groups: ['ops'], src: 'local' },
    });
  });
});
