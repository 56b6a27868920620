import type pg from 'pg';
import { AppError } from '../errors.js';
import { usernameKey } from '../security/username-key.js';
import { toStoreError } from './db.js';

export interface UserRecord {
  id: string;
  username: string;
  passwordHash: string;
  email: string | null;
  fullName: string | null;
  groups: string[];
  disabled: boolean;
}

export interface CreateUserInput {
  username: string;
  passwordHash: string;
  email?: string | null;
  fullName?: string | null;
  groups?: string[];
}

export interface UsersRepo {
  /**
   * Matches on usernameKey (NFKC + case fold), as every method taking a username does; returns
   * disabled users too (the caller decides).
   */
  findByUsername(username: string): Promise<UserRecord | null>;
  /** Stores the username as given. A username with the same key exists → AppError('ERR_USER_EXISTS', 409). */
  create(input: CreateUserInput): Promise<UserRecord>;
  updatePasswordHash(userId: string, passwordHash: string): Promise<void>;
  /** False if there is no such user. */
  setPasswordHash(username: string, passwordHash: string): Promise<boolean>;
  setDisabled(username: string, disabled: boolean): Promise<boolean>;
  /** Replaces the whole set. */
  setGroups(username: string, groups: string[]): Promise<boolean>;
  /** Ordered by username key. */
  list(): Promise<UserRecord[]>;
  count(): Promise<number>;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  email: string | null;
  full_name: string | null;
  groups: string[];
  disabled: boolean;
}

const COLUMNS = 'id, username, password_hash, email, full_name, groups, disabled';
const UNIQUE_VIOLATION = '23505';

function toRecord(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    email: row.email,
    fullName: row.full_name,
    groups: row.groups,
    disabled: row.disabled,
  };
}

/**
 * SQL for the users table, all parameterised. Connection-class failures become
 * AppError('ERR_STORE_UNAVAILABLE', 503); any other database error propagates unchanged.
 * Not checked here: username syntax, group names, email format (the callers validate input).
 */
export function createUsersRepo(db: { query: pg.Pool['query'] }): UsersRepo {
  async function run<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await db.query<R>(text, values);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  return {
    async findByUsername(username) {
      const result = await run<UserRow>(`SELECT ${COLUMNS} FROM users WHERE username_key = $1`, [usernameKey(username)]);
      const row = result.rows[0];
      return row ? toRecord(row) : null;
    },

    async create(input) {
      try {
        const result = await run<UserRow>(
          `INSERT INTO users (username, username_key, password_hash, email, full_name, groups) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
          [input.username, usernameKey(input.username), input.passwordHash, input.email ?? null, input.fullName ?? null, input.groups ?? []],
        );
        return toRecord(result.rows[0]!);
      } catch (err) {
        if ((err as { code?: unknown }).code === UNIQUE_VIOLATION) {
          throw new AppError('ERR_USER_EXISTS', 409, 'A user with that username already exists.', { cause: err });
        }
        throw err;
      }
    },

    async updatePasswordHash(userId, passwordHash) {
      await run('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [userId, passwordHash]);
    },

    async setPasswordHash(username, passwordHash) {
      const result = await run('UPDATE users SET password_hash = $2, updated_at = now() WHERE username_key = $1', [
        usernameKey(username),
        passwordHash,
      ]);
      return result.rowCount === 1;
    },

    async setDisabled(username, disabled) {
      const result = await run('UPDATE users SET disabled = $2, updated_at = now() WHERE username_key = $1', [
        usernameKey(username),
        disabled,
      ]);
      return result.rowCount === 1;
    },

    async setGroups(username, groups) {
      const result = await run('UPDATE users SET groups = $2, updated_at = now() WHERE username_key = $1', [
        usernameKey(username),
        groups,
      ]);
      return result.rowCount === 1;
    },

    async list() {
      const result = await run<UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY username_key, username`);
      return result.rows.map(toRecord);
    },

    async count() {
      const result = await run<{ n: number }>('SELECT count(*)::int AS n FROM users');
      return result.rows[0]!.n;
    },
  };
}
