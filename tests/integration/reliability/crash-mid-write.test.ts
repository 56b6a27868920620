/**
 * Issue 11 (5): the auth service killed (SIGKILL) in the middle of sign-ins, and users CLI processes
 * killed in the middle of user changes. Afterwards the database holds nothing half-written: every
 * sign-in the client saw succeed has its session row and its `login_success` audit row, no session
 * row lacks its audit row (nor the reverse), no disabled user keeps a live session, and every
 * password hash (some were being upgraded by the sign-ins: a cheaper imported cost) still parses.
 * The kill times are random; the seed is printed so a failing run can be repeated (RELIABILITY_SEED).
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../../../auth-service/src/passwords/index.js';
import { parseStoredHash } from '../../../auth-service/src/passwords/hash-formats.js';
import { REPO_ROOT } from '../../../scripts/lib/nginx-runtime.js';
import { createPrng, seedFromEnv } from '../../support/prng.js';
import { sleep } from '../../support/load.js';
import { stackTest, startStack, type Stack } from '../../support/stack.js';
import { waitUntil } from '../../support/wait.js';

const PASSWORD = 'crash mid write password 99';
const USERS = Array.from({ length: 12 }, (_, i) => `crew${i}`);
const ROUNDS = 2;

const sidOf = (session: string): string => (JSON.parse(Buffer.from(session.split('=')[1]!.split('.')[1]!, 'base64url').toString('utf8')) as { sid: string }).sid;

/** `npm run users -- <args>` as its own process; `killAfterMs` sends it SIGKILL then. Resolves with its exit code (null if killed). */
function usersCli(databaseUrl: string, args: string[], killAfterMs?: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'auth-service', 'src', 'cli', 'users.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: databaseUrl },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin!.end(args.includes('--password-stdin') ? PASSWORD : '');
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

describe('crash mid-write', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack({ authProcess: true, env: { LOGIN_HASH_CONCURRENCY: '2', LOGIN_RATE_LIMIT_IP: '100000/60', LOGIN_RATE_LIMIT_USER: '100000/60', LOGIN_RATE_LIMIT_USER_IP: '100000/60' } });
    // Imported at a cheaper cost than the policy: each first sign-in rewrites the hash (a write to kill).
    const cheap = createPasswordHasher({ ...DEFAULT_PASSWORD_POLICY, pbkdf2Iterations: 100_000 });
    for (const u of USERS) await stack.repo.create({ username: u, passwordHash: await cheap.hash(PASSWORD), groups: ['Federation'], email: null, fullName: null });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('kill -9 during sign-ins and user changes leaves nothing half-written, and no success without its audit row', async () => {
    const seed = seedFromEnv();
    const random = createPrng(seed);
    console.log(`crash mid-write: RELIABILITY_SEED=${seed}`);
    const succeeded: string[] = [];
    const outcomes: Record<string, number> = {};

    for (let round = 0; round < ROUNDS; round++) {
      let running = true;
      // Sign-ins, 6 at a time, each client keeping what it saw.
      const signIns = Array.from({ length: 6 }, async (_, k) => {
        for (let i = k; running; i += 6) {
          const user = USERS[i % USERS.length]!;
          const seen = await stack.login(user, PASSWORD, '/').then(
            ({ res, session }) => (res.status === 302 && session !== null ? (succeeded.push(sidOf(session)), 'success') : String(res.status)),
            // The service already gone: no form to sign in with (its 502 page has no CSRF cookie).
            (err: NodeJS.ErrnoException) => err.code ?? (/no CSRF cookie/.test(err.message) ? 'no-form' : 'error'),
          );
          outcomes[seen] = (outcomes[seen] ?? 0) + 1;
        }
      });
      // User changes in CLI processes, some killed part-way: disable (+ end sessions), enable, passwd, groups.
      const changes = (async () => {
        for (let i = 0; running; i++) {
          const user = USERS[Math.floor(random() * USERS.length)]!;
          const args = [['disable', user], ['enable', user], ['passwd', user, '--password-stdin'], ['groups', user, 'Federation', `Deck${i}`]][i % 4]!;
          await usersCli(stack.databaseUrl, args, random() < 0.5 ? 300 + Math.floor(random() * 1500) : undefined);
        }
      })();
      // Killed once sign-ins are flowing, at a random point of the ones in flight.
      const before = succeeded.length;
      expect(await waitUntil(() => succeeded.length >= before + 3, 30_000)).toBe(true);
      await sleep(Math.floor(random() * 400));
      await stack.killAuthService('SIGKILL');
      running = false;
      await Promise.all([...signIns, changes]);
      await stack.restartAuthService({});
    }
    console.log(`crash mid-write: client outcomes ${JSON.stringify(outcomes)}`);
    expect(succeeded.length).toBeGreaterThan(0);

    const q = async (sql: string, params: unknown[] = []) => (await stack.pool.query(sql, params)).rows;
    // Every sign-in the client saw succeed: its session row and its audit row.
    const known = await q(
      `SELECT s.sid FROM sessions s JOIN auth_events e ON e.sid = s.sid AND e.event = 'login_success' WHERE s.sid = ANY($1)`,
      [succeeded],
    );
    expect(new Set(known.map((r: { sid: string }) => r.sid))).toEqual(new Set(succeeded));
    // Nothing half-written: no session without its login_success row, no login_success without its session.
    expect(await q(`SELECT sid FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM auth_events e WHERE e.sid = s.sid AND e.event = 'login_success')`)).toEqual([]);
    expect(await q(`SELECT sid FROM auth_events e WHERE e.event = 'login_success' AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = e.sid)`)).toEqual([]);
    // An ended session always names why, with its event.
    expect(await q(`SELECT sid FROM sessions s WHERE revoked_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM auth_events e WHERE e.sid = s.sid AND e.event IN ('revoke', 'logout', 'disable'))`)).toEqual([]);
    // A disabled user never keeps a live session.
    expect(await q(`SELECT s.sid, s.username FROM sessions s JOIN users u ON s.user_key = 'local:' || u.username_key WHERE u.disabled AND s.revoked_at IS NULL`)).toEqual([]);
    // Every hash, upgraded or set by passwd while something was killed, is whole.
    const hashes = await q('SELECT username, password_hash FROM users');
    expect(hashes.filter((r: { password_hash: string }) => parseStoredHash(r.password_hash) === null)).toEqual([]);
    expect(hashes).toHaveLength(USERS.length);
  }, 120_000);
});
