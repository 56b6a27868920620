import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { createPasswordHasher } from '../passwords/index.js';
import { createPool, runMigrations } from './db.js';
import { seedDemoUsers } from './seed.js';
import { createUsersRepo } from './users-repo.js';

let database: FreshDatabase;
let pool: pg.Pool;
const hasher = createPasswordHasher({ algorithm: 'pbkdf2-sha512', pbkdf2Iterations: 1000, argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } });

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 2 });
  await runMigrations(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('seedDemoUsers', () => {
  it('creates kirk and mccoy with random passwords on an empty table, then never again', async () => {
    const repo = createUsersRepo(pool);
    const seeded = await seedDemoUsers(repo, hasher);
    expect(seeded.map((s) => s.username)).toEqual(['kirk', 'mccoy']);
    expect(seeded[0]!.password).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(seeded[0]!.password).not.toBe(seeded[1]!.password);

    expect(await repo.findByUsername('kirk')).toMatchObject({
      fullName: 'James T. Kirk',
      email: 'kirk@enterprise.example',
      groups: ['Federation'],
      disabled: false,
    });
    expect(await repo.findByUsername('mccoy')).toMatchObject({ fullName: 'Leonard McCoy', email: 'mccoy@enterprise.example', groups: [] });
    for (const { username, password } of seeded) {
      expect(await hasher.verify(password, (await repo.findByUsername(username))!.passwordHash)).toBe(true);
    }

    expect(await seedDemoUsers(repo, hasher)).toEqual([]);
    expect(await repo.count()).toBe(2);
  });

  it('makes the passwords at least PASSWORD_MIN_LENGTH long', async () => {
    const fresh = await createFreshDatabase();
    const p = createPool(fresh.url, { max: 1 });
    try {
      await runMigrations(p);
      const seeded = await seedDemoUsers(createUsersRepo(p), hasher, { minLength: 40 });
      for (const { password } of seeded) expect(password).toMatch(/^[A-Za-z0-9_-]{40}$/);
    } finally {
      await p.end();
      await fresh.drop();
    }
  });

  it('leaves a table that already has users alone', async () => {
    const fresh = await createFreshDatabase();
    const other = createPool(fresh.url, { max: 1 });
    try {
      await runMigrations(other);
      const repo = createUsersRepo(other);
      await repo.create({ username: 'picard', passwordHash: 'h' });
      expect(await seedDemoUsers(repo, hasher)).toEqual([]);
      expect((await repo.list()).map((u) => u.username)).toEqual(['picard']);
    } finally {
      await other.end();
      await fresh.drop();
    }
  });
});
