import { randomBytes } from 'node:crypto';
import { isAppError } from '../errors.js';
import { DEFAULT_PASSWORD_MIN_LENGTH, type NewPasswordRules } from '../passwords/new-password-rules.js';
import type { PasswordHasher } from '../passwords/password-hasher.js';
import type { UsersRepo } from './users-repo.js';

export interface SeededUser {
  username: string;
  /** Random, shown once by the launcher; never stored or logged anywhere else. */
  password: string;
}

const DEMO_USERS = [
  { username: 'kirk', fullName: 'James T. Kirk', email: 'kirk@enterprise.example', groups: ['Federation'] },
  { username: 'mccoy', fullName: 'Leonard McCoy', email: 'mccoy@enterprise.example', groups: [] },
] as const;

/**
 * Creates the demo users `kirk` (group Federation) and `mccoy` (no groups) with fresh random passwords,
 * but only when the users table is empty. Returns the created usernames with their passwords, or an
 * empty array when there were users already. A demo user that another process created meanwhile is
 * skipped, not reported. The passwords are random base64url, at least 16 characters and at least
 * `rules.minLength` (PASSWORD_MIN_LENGTH), so they meet the rules the users CLI applies.
 */
export async function seedDemoUsers(
  repo: UsersRepo,
  hasher: PasswordHasher,
  rules: NewPasswordRules = { minLength: DEFAULT_PASSWORD_MIN_LENGTH },
): Promise<SeededUser[]> {
  const length = Math.max(16, rules.minLength);
  if ((await repo.count()) > 0) return [];
  const seeded: SeededUser[] = [];
  for (const demo of DEMO_USERS) {
    const password = randomBytes(Math.ceil((length * 3) / 4)).toString('base64url').slice(0, length);
    try {
      await repo.create({ ...demo, groups: [...demo.groups], passwordHash: await hasher.hash(password) });
      seeded.push({ username: demo.username, password });
    } catch (err) {
      if (isAppError(err) && err.code === 'ERR_USER_EXISTS') continue;
      throw err;
    }
  }
  return seeded;
}
