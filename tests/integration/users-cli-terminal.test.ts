/**
 * The users CLI at a real terminal: util-linux `script` gives it a pseudo-terminal, and everything
 * the terminal shows comes back on script's stdout. Issue 8: the prompt echoed the password.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type pg from 'pg';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../../auth-service/src/passwords/index.js';
import { createPool } from '../../auth-service/src/storage/db.js';
import { createUsersRepo, type UsersRepo } from '../../auth-service/src/storage/users-repo.js';
import { createFreshDatabase, type FreshDatabase } from '../support/fresh-database.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

let database: FreshDatabase;
let pool: pg.Pool;
let repo: UsersRepo;

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 2 });
  repo = createUsersRepo(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

interface Terminal {
  /** Resolves once the terminal has shown `text`. */
  waitFor(text: string): Promise<void>;
  type(keys: string): void;
  exit: Promise<number>;
  screen(): string;
}

/** Runs the users CLI under `script`, so its stdin and stdout are a pseudo-terminal. */
function runAtTerminal(args: string[]): Terminal {
  const command = [TSX, join(REPO_ROOT, 'auth-service/src/cli/users.ts'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    env: { ...process.env, DATABASE_URL: database.url, PASSWORD_PBKDF2_ITERATIONS: '100000', TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const onData = (chunk: Buffer) => {
    screen += chunk.toString('utf8');
    for (const w of waiters.filter((w) => screen.includes(w.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exit = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return {
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        if (screen.includes(text)) return resolve();
        const timer = setTimeout(() => reject(new Error(`the terminal never showed ${JSON.stringify(text)}; it showed:\n${screen}`)), 20_000);
        waiters.push({ text, resolve: () => (clearTimeout(timer), resolve()) });
      }),
    type: (keys) => child.stdin.write(keys),
    exit,
    screen: () => screen,
  };
}

describe('users CLI at a terminal', () => {
  it('asks for the password twice without showing it, and stores it', async () => {
    const secret = 'Vulcan-Logic-Is-Long-42';
    const term = runAtTerminal(['add', 'spock', '--password-stdin', '--group', 'Science']);
    await term.waitFor('New password: ');
    // A typo, erased with Backspace, must not end up in the password either.
    term.type(`${secret}X\x7f\r`);
    await term.waitFor('Repeat it: ');
    term.type(`${secret}\r`);
    expect(await term.exit).toBe(0);
    expect(term.screen()).toContain('Created user spock.');
    expect(term.screen()).not.toContain(secret);
    expect(term.screen()).not.toContain('Vulcan');
    const user = await repo.findByUsername('spock');
    expect(await createPasswordHasher(DEFAULT_PASSWORD_POLICY).verify(secret, user!.passwordHash)).toBe(true);
  }, 30_000);

  it('refuses two different entries and a common password, saying why, and changes nothing', async () => {
    const mismatch = runAtTerminal(['passwd', 'spock', '--password-stdin']);
    await mismatch.waitFor('New password: ');
    mismatch.type('first-long-password-1\r');
    await mismatch.waitFor('Repeat it: ');
    mismatch.type('second-long-password-2\r');
    expect(await mismatch.exit).toBe(1);
    expect(mismatch.screen()).toContain('error: the two passwords do not match; nothing was changed');

    const common = runAtTerminal(['add', 'chekov', '--password-stdin']);
    await common.waitFor('New password: ');
    common.type('1q2w3e4r5t6y\r');
    await common.waitFor('Repeat it: ');
    common.type('1q2w3e4r5t6y\r');
    expect(await common.exit).toBe(1);
    expect(common.screen()).toContain('error: password is one of the most commonly used passwords');
    expect(common.screen()).not.toContain('1q2w3e4r5t6y');
    expect(await repo.findByUsername('chekov')).toBeNull();
  }, 30_000);
});
