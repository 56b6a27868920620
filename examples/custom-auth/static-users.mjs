/**
 * Example custom authentication module for the gateway: users from a JSON file, passwords as scrypt
 * hashes. Plain ESM, no dependencies. Enable it with
 *
 *   AUTH_CUSTOM_MODULE=/abs/path/static-users.mjs
 *   CUSTOM_AUTH_USERS_FILE=/abs/path/users.json
 *
 * The users file is a JSON array of
 *   { "username": "ada", "passwordHash": "scrypt$<salt base64url>$<key base64url>",
 *     "name": "Ada L", "email": "ada@example.test", "groups": ["ops"], "disabled": false }
 * (see README.md for a snippet that writes one). The file is read once, when the gateway starts.
 *
 * The default export is a factory; the gateway calls it once at start-up and uses the object it
 * returns: `{ id, authenticate({ username, password }, { requestId }) }`.
 */
import { readFileSync } from 'node:fs';
import { scryptSync, timingSafeEqual, randomBytes } from 'node:crypto';

const KEY_LENGTH = 32;
// A hash of a random password: unknown users are checked against it, so they cost the same time
// as a wrong password and cannot be told apart by timing.
const DUMMY_HASH = hashPassword(randomBytes(16).toString('hex'));

/** Returns "scrypt$<salt>$<key>" for `password` (also used by the README's generator snippet). */
export function hashPassword(password) {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64url')}$${scryptSync(password, salt, KEY_LENGTH).toString('base64url')}`;
}

function verifyPassword(password, stored) {
  const [scheme, salt, key] = String(stored).split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = scryptSync(password, Buffer.from(salt, 'base64url'), expected.length || KEY_LENGTH);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function loadUsers(file) {
  const list = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(list)) throw new Error(`${file} must contain a JSON array of users`);
  const users = new Map();
  for (const user of list) {
    if (typeof user?.username !== 'string' || typeof user.passwordHash !== 'string') {
      throw new Error(`${file}: every user needs a string "username" and "passwordHash"`);
    }
    users.set(user.username.toLowerCase(), user);
  }
  return users;
}

export default function createStaticUsersAuthenticator() {
  const file = process.env.CUSTOM_AUTH_USERS_FILE;
  if (!file) throw new Error('CUSTOM_AUTH_USERS_FILE is not set');
  const users = loadUsers(file);

  return {
    id: 'static-users',
    async authenticate({ username, password }) {
      const user = users.get(String(username).toLowerCase());
      if (!user) {
        verifyPassword(password, DUMMY_HASH);
        return { kind: 'not-found' };
      }
      if (!verifyPassword(password, user.passwordHash)) return { kind: 'invalid' };
      if (user.disabled) return { kind: 'disabled' };
      return {
        kind: 'success',
        identity: {
          sub: user.username.toLowerCase(),
          username: user.username,
          ...(user.name ? { name: user.name } : {}),
          ...(user.email ? { email: user.email } : {}),
          groups: Array.isArray(user.groups) ? user.groups : [],
          // The gateway sets `src` itself (to "custom:static-users"); no need to return it.
          src: 'static-users',
        },
      };
    },
  };
}
