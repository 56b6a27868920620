import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { AppError } from '../errors.js';
import { createPool, runMigrations } from './db.js';
import { createUsersRepo, type UsersRepo } from './users-repo.js';

let database: FreshDatabase;
let pool: pg.Pool;
let repo: UsersRepo;

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 4 });
  await runMigrations(pool);
  repo = createUsersRepo(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('users repo on PostgreSQL', () => {
  it('creates a user and returns the stored record with defaults', async () => {
    const user = await repo.create({ username: 'Spock', passwordHash: 'h1' });
    expect(user).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      username: 'Spock',
      passwordHash: 'h1',
      email: null,
      fullName: null,
      groups: [],
      disabled: false,
    });
  });

  it.each(['spock', 'SPOCK', 'Spock', 'sPoCk'])('finds the user case-insensitively as %s, keeping the stored spelling', async (asTyped) => {
    expect((await repo.findByUsername(asTyped))?.username).toBe('Spock');
  });

  // The same key as the login rate limiter: a spelling that PostgreSQL's lower() would fold onto
  // "kirk" but the limiter would not must not find kirk (issue 8: `kİrk` got a fresh bucket).
  it.each(['kİrk', 'KİRK'])('does not find kirk as %s, although PostgreSQL lower() folds it to kirk', async (asTyped) => {
    await pool.query("INSERT INTO users (username, username_key, password_hash) VALUES ('kirk', 'kirk', 'h') ON CONFLICT DO NOTHING");
    expect((await pool.query<{ l: string }>('SELECT lower($1) AS l', [asTyped])).rows[0]!.l).toBe('kirk');
    expect(await repo.findByUsername(asTyped)).toBeNull();
    expect((await repo.findByUsername('KIRK'))?.username).toBe('kirk');
    await pool.query("DELETE FROM users WHERE username = 'kirk'");
  });

  it.each([
    ['fullwidth letters', 'Ｓｐｏｃｋ'],
    ['the long s', 'ſpock'],
  ])('finds Spock through %s (NFKC), and refuses to create that spelling as a second user', async (_name, asTyped) => {
    expect((await repo.findByUsername(asTyped))?.username).toBe('Spock');
    await expect(repo.create({ username: asTyped, passwordHash: 'h' })).rejects.toMatchObject({ code: 'ERR_USER_EXISTS' });
  });

  it('treats a sharp s and SS as the same user', async () => {
    await repo.create({ username: 'Straße', passwordHash: 'h' });
    expect((await repo.findByUsername('STRASSE'))?.username).toBe('Straße');
    expect((await repo.findByUsername('STRAẞE'))?.username).toBe('Straße');
    await expect(repo.create({ username: 'strasse', passwordHash: 'h' })).rejects.toMatchObject({ code: 'ERR_USER_EXISTS' });
    await pool.query("DELETE FROM users WHERE username = 'Straße'");
  });

  it('returns null for an unknown user', async () => {
    expect(await repo.findByUsername('nobody')).toBeNull();
  });

  it("treats LIKE wildcards in a username as plain characters", async () => {
    expect(await repo.findByUsername('sp%')).toBeNull();
    expect(await repo.findByUsername('sp_ck')).toBeNull();
  });

  it.each(['Spock', 'spock', 'SPOCK'])('rejects a duplicate spelled %s with ERR_USER_EXISTS (409)', async (username) => {
    const attempt = repo.create({ username, passwordHash: 'h2' });
    await expect(attempt).rejects.toBeInstanceOf(AppError);
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_USER_EXISTS', status: 409 });
  });

  it('stores email, full name and groups as given', async () => {
    const user = await repo.create({
      username: 'uhura',
      passwordHash: 'h',
      email: 'uhura@enterprise.example',
      fullName: 'Nyota Uhura',
      groups: ['Federation', 'Comms, Bridge'],
    });
    expect(await repo.findByUsername('UHURA')).toEqual(user);
    expect(user.groups).toEqual(['Federation', 'Comms, Bridge']);
  });

  it('updates the password hash by id (rehash after login)', async () => {
    const user = (await repo.findByUsername('spock'))!;
    await repo.updatePasswordHash(user.id, 'h-rehashed');
    expect((await repo.findByUsername('spock'))?.passwordHash).toBe('h-rehashed');
  });

  it('sets the password hash by username, in any case', async () => {
    expect(await repo.setPasswordHash('SPOCK', 'h-cli')).toBe(true);
    expect((await repo.findByUsername('spock'))?.passwordHash).toBe('h-cli');
  });

  it('disables and enables a user', async () => {
    expect(await repo.setDisabled('spock', true)).toBe(true);
    expect((await repo.findByUsername('spock'))?.disabled).toBe(true);
    expect(await repo.setDisabled('Spock', false)).toBe(true);
    expect((await repo.findByUsername('spock'))?.disabled).toBe(false);
  });

  it('replaces the group set, including with no groups', async () => {
    expect(await repo.setGroups('uhura', ['Starfleet'])).toBe(true);
    expect((await repo.findByUsername('uhura'))?.groups).toEqual(['Starfleet']);
    expect(await repo.setGroups('uhura', [])).toBe(true);
    expect((await repo.findByUsername('uhura'))?.groups).toEqual([]);
  });

  it.each([
    ['setPasswordHash', () => repo.setPasswordHash('ghost', 'h')],
    ['setDisabled', () => repo.setDisabled('ghost', true)],
    ['setGroups', () => repo.setGroups('ghost', ['x'])],
  ])('%s reports false for an unknown user', async (_name, call) => {
    expect(await call()).toBe(false);
  });

  it('lists users ordered by username regardless of case, and counts them', async () => {
    await repo.create({ username: 'chekov', passwordHash: 'h' });
    await repo.create({ username: 'Bones', passwordHash: 'h' });
    expect((await repo.list()).map((u) => u.username)).toEqual(['Bones', 'chekov', 'Spock', 'uhura']);
    expect(await repo.count()).toBe(4);
  });

  it('keeps hostile input as data (parameterised SQL)', async () => {
    const username = "x'); DROP TABLE users; --";
    await repo.create({ username, passwordHash: 'h', fullName: "O'Brien" });
    expect((await repo.findByUsername(username))?.fullName).toBe("O'Brien");
    expect(await repo.count()).toBe(5);
  });
});

describe('users repo when the store is down', () => {
  it('turns a refused connection into ERR_STORE_UNAVAILABLE (503) with the cause kept', async () => {
    // Port 1 on loopback: nothing listens there, so the connect is refused at once.
    const deadPool = createPool('postgres://postgres@127.0.0.1:1/postgres', { max: 1 });
    try {
      const attempt = createUsersRepo(deadPool).findByUsername('kirk');
      await expect(attempt).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
        status: 503,
        safeMessage: 'The user store is unavailable. Try again shortly.',
        cause: expect.objectContaining({ code: 'ECONNREFUSED' }),
      });
    } finally {
      await deadPool.end();
    }
  });
});
