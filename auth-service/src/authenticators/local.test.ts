import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { FAST_POLICY, openTestDatabase, type TestDatabase } from '../app.testkit.js';
import { createPasswordHasher, type PasswordHasher } from '../passwords/index.js';
import { createLocalAuthenticator } from './local.js';

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
    },
  };
}

describe('local authenticator', () => {
  test.each([
    ['right password', 'Quinn', 'quinns password', 'success', ['verify']],
    ['username in another case', 'quinn', 'quinns password', 'success', ['verify']],
    ['wrong password', 'Quinn', 'nope', 'invalid', ['verify']],
    ['unknown user (verifies against the dummy hash, same cost)', 'nobody', 'nope', 'not-found', ['verifyDummy']],
    ['disabled user, right password (still verified)', 'rita', 'ritas password', 'disabled', ['verify']],
    ['disabled user, wrong password', 'rita', 'nope', 'invalid', ['verify']],
  ])('%s', async (_name, username, password, kind, calls) => {
    const recording = recordingHasher();
    const auth = createLocalAuthenticator({ usersRepo: db.repo, hasher: recording.hasher, logger: pino({ level: 'silent' }) });
    const outcome = await auth.authenticate({ username, password }, { requestId: 'r1' });
    expect(outcome.kind).toBe(kind);
    expect(recording.calls).toEqual(calls);
  });

  test('maps the user row to an identity with the stored username spelling', async () => {
    const auth = createLocalAuthenticator({ usersRepo: db.repo, hasher: createPasswordHasher(FAST_POLICY), logger: pino({ level: 'silent' }) });
    expect(await auth.authenticate({ username: 'QUINN', password: 'quinns password' }, { requestId: 'r2' })).toEqual({
      kind: 'success',
      identity: { sub: userId, username: 'Quinn', name: 'Quinn Q', email: 'q@example.test', emailVerified: true, groups: ['ops'], src: 'local' },
    });
  });
});
