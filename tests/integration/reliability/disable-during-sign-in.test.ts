/**
 * Found by the crash/concurrency work of issue 11: a local user disabled (`npm run users -- disable`)
 * while their sign-in was still checking the password got a 302 and a live session row, although
 * disabling promises that a disabled user never keeps a live session. The password check takes
 * 0.1-0.3 s, and seconds behind a full LOGIN_HASH_QUEUE. The session insert now takes a share lock
 * on the user row and refuses a disabled user (storage/sessions-repo.ts).
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { Readable } from 'node:stream';
import { runUsersCli } from '../../../auth-service/src/cli/users-cli.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../../../auth-service/src/passwords/index.js';
import { sleep } from '../../support/load.js';
import { stackTest, startStack, type Stack } from '../../support/stack.js';

const PASSWORD = 'disable during sign-in 1';

describe('disabled during sign-in', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack();
    // A hash of 15x the policy's cost: its check (and the rehash after it) leaves seconds to disable the user in.
    const slow = createPasswordHasher({ ...DEFAULT_PASSWORD_POLICY, pbkdf2Iterations: 3_000_000 });
    await stack.repo.create({ username: 'kirk', passwordHash: await slow.hash(PASSWORD), groups: ['Federation'], email: null, fullName: null });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('a user disabled while their password is being checked gets no session, and no live session row', async () => {
    const signIn = stack.login('kirk', PASSWORD, '/');
    await sleep(300);
    const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: { DATABASE_URL: stack.databaseUrl }, stdin: Readable.from([]) };
    expect(await runUsersCli(['disable', 'kirk'], io)).toBe(0);
    const { res, session } = await signIn;
    expect(res.status).toBe(401);
    expect(session).toBeNull();
    expect((await stack.pool.query('SELECT sid FROM sessions WHERE revoked_at IS NULL')).rows).toEqual([]);
    const failures = await stack.pool.query<{ reason: string }>("SELECT reason FROM auth_events WHERE event = 'login_failure'");
    expect(failures.rows).toEqual([{ reason: 'disabled' }]);
  }, 60_000);
});
