import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { createPool, DEFAULT_MIGRATIONS_DIR, describeStoreConnectionError, isConnectionError, runMigrations, toStoreError } from './db.js';
import { createUsersRepo } from './users-repo.js';
import { createServer, type Server, type Socket } from 'node:net';

let database: FreshDatabase;
let tempDir: string;
const pools: pg.Pool[] = [];

function pool(opts: Parameters<typeof createPool>[1] = {}): pg.Pool {
  const created = createPool(database.url, { max: 2, ...opts });
  pools.push(created);
  return created;
}

beforeAll(async () => {
  database = await createFreshDatabase();
  tempDir = await mkdtemp(path.join(os.tmpdir(), 'gw-migrations-'));
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await database?.drop();
  await rm(tempDir, { recursive: true, force: true });
});

describe('runMigrations', () => {
  it('applies the repository migrations once and records them', async () => {
    const p = pool();
    expect(await runMigrations(p)).toEqual(['001_users', '002_username_key', '003_sessions_audit', '004_session_idp_refresh', '005_sessions_revoked_at', '006_auth_events_app', '007_sso_handoffs']);
    expect(await runMigrations(p)).toEqual([]);
    const recorded = await p.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(recorded.rows).toEqual([{ version: '001_users' }, { version: '002_username_key' }, { version: '003_sessions_audit' }, { version: '004_session_idp_refresh' }, { version: '005_sessions_revoked_at' }, { version: '006_auth_events_app' }, { version: '007_sso_handoffs' }]);
  });

  it('enforces one user per username key in the schema itself, and requires the key', async () => {
    const p = pool();
    await p.query("INSERT INTO users (username, username_key, password_hash) VALUES ('Scotty', 'scotty', 'h')");
    await expect(p.query("INSERT INTO users (username, username_key, password_hash) VALUES ('SCOTTY', 'scotty', 'h')")).rejects.toMatchObject({ code: '23505' });
    await expect(p.query("INSERT INTO users (username, password_hash) VALUES ('Chekov', 'h')")).rejects.toMatchObject({ code: '23502' });
  });

  it('gives users created before the key column their key (002_username_key)', async () => {
    const dir = path.join(tempDir, 'upgrade');
    await mkdir(dir);
    await writeFile(path.join(dir, '001_users.sql'), await readFile(path.join(DEFAULT_MIGRATIONS_DIR, '001_users.sql'), 'utf8'));
    const fresh = await createFreshDatabase();
    const p = createPool(fresh.url, { max: 1 });
    try {
      await runMigrations(p, dir);
      await p.query("INSERT INTO users (username, password_hash) VALUES ('Kirk', 'h'), ('mc.coy@Enterprise', 'h')");
      expect(await runMigrations(p)).toEqual(['002_username_key', '003_sessions_audit', '004_session_idp_refresh', '005_sessions_revoked_at', '006_auth_events_app', '007_sso_handoffs']);
      const repo = createUsersRepo(p);
      expect((await repo.findByUsername('KIRK'))?.username).toBe('Kirk');
      expect((await repo.findByUsername('MC.COY@enterprise'))?.username).toBe('mc.coy@Enterprise');
      expect(await repo.findByUsername('kİrk')).toBeNull();
    } finally {
      await p.end();
      await fresh.drop();
    }
  });

  it('applies each file exactly once when two processes migrate at the same time', async () => {
    const dir = path.join(tempDir, 'concurrent');
    await mkdir(dir);
    // A migration that fails if it runs twice (plain CREATE TABLE) and takes a moment.
    await writeFile(path.join(dir, '001_a.sql'), 'CREATE TABLE race_a (id int); SELECT pg_sleep(0.2);');
    await writeFile(path.join(dir, '002_b.sql'), 'CREATE TABLE race_b (id int);');
    const fresh = await createFreshDatabase();
    const [p1, p2] = [createPool(fresh.url, { max: 1 }), createPool(fresh.url, { max: 1 })];
    try {
      const [a, b] = await Promise.all([runMigrations(p1, dir), runMigrations(p2, dir)]);
      expect([...a, ...b].sort()).toEqual(['001_a', '002_b']);
    } finally {
      await Promise.all([p1.end(), p2.end()]);
      await fresh.drop();
    }
  });

  it('applies files in numeric order, not text order', async () => {
    const dir = path.join(tempDir, 'ordered');
    await mkdir(dir);
    await writeFile(path.join(dir, '10_second.sql'), 'ALTER TABLE ordered ADD COLUMN b int;');
    await writeFile(path.join(dir, '9_first.sql'), 'CREATE TABLE ordered (a int);');
    expect(await runMigrations(pool(), dir)).toEqual(['9_first', '10_second']);
  });

  it('rolls back a failing file, names it, and leaves it unrecorded', async () => {
    const dir = path.join(tempDir, 'failing');
    await mkdir(dir);
    await writeFile(path.join(dir, '001_half.sql'), 'CREATE TABLE half_done (id int); SELECT no_such_function();');
    const p = pool();
    await expect(runMigrations(p, dir)).rejects.toThrow(/migration 001_half\.sql failed/);
    expect((await p.query("SELECT to_regclass('half_done') AS t")).rows[0].t).toBeNull();
    expect((await p.query("SELECT count(*)::int AS n FROM schema_migrations WHERE version = '001_half'")).rows[0].n).toBe(0);
  });

  it.each([
    ['a file without a number', 'users.sql'],
    ['a duplicated number', '001_users.sql'],
  ])('refuses a migrations folder with %s', async (_name, file) => {
    const dir = await mkdtemp(path.join(tempDir, 'bad-'));
    await writeFile(path.join(dir, '001_one.sql'), 'SELECT 1;');
    await writeFile(path.join(dir, file), 'SELECT 1;');
    await expect(runMigrations(pool(), dir)).rejects.toThrow(/Migration file name|share number/);
  });
});

describe('createPool', () => {
  it('cancels a statement that runs past the timeout and reports the store as unavailable', async () => {
    const p = pool({ queryTimeoutMillis: 300 });
    const err = await p.query('SELECT pg_sleep(3)').catch((e: unknown) => e);
    expect(isConnectionError(err)).toBe(true);
    expect(toStoreError(err)).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', status: 503 });
  });

  it('survives the server killing an idle connection, logs it, and reconnects', async () => {
    const warnings: Array<Record<string, unknown>> = [];
    const p = pool({ applicationName: 'gw-kill-test', logger: { warn: (obj) => warnings.push(obj) } });
    await p.query('SELECT 1');
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gw-kill-test'");
    } finally {
      await admin.end();
    }
    for (let i = 0; i < 50 && warnings.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    expect(warnings[0]).toMatchObject({ event: 'db_pool_error', code: '57P01' });
    expect((await p.query('SELECT 2 AS two')).rows[0].two).toBe(2);
  });

  it('fails fast when nothing answers the connect', async () => {
    const started = Date.now();
    const dead = createPool('postgres://postgres@127.0.0.1:1/postgres', { max: 1 });
    pools.push(dead);
    const err = await dead.query('SELECT 1').catch((e: unknown) => e);
    expect(isConnectionError(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
  });
});

describe('isConnectionError', () => {
  it.each([
    ['connection refused', { code: 'ECONNREFUSED' }, true],
    ['connection reset', { code: 'ECONNRESET' }, true],
    ['SQLSTATE class 08 (connection exception)', { code: '08006' }, true],
    ['admin shutdown', { code: '57P01' }, true],
    ['crash shutdown', { code: '57P02' }, true],
    ['cannot connect now', { code: '57P03' }, true],
    ['pg connect timeout', new Error('timeout exceeded when trying to connect'), true],
    ['pg query timeout', new Error('Query read timeout'), true],
    ['connection terminated', new Error('Connection terminated unexpectedly'), true],
    ['happy-eyeballs AggregateError', new AggregateError([{ code: 'ECONNREFUSED' }]), true],
    ['unique violation', { code: '23505' }, false],
    ['syntax error', { code: '42601' }, false],
    ['undefined table', { code: '42P01' }, false],
    ['a plain bug', new TypeError('x is undefined'), false],
    ['not an object', 'ECONNREFUSED', false],
  ])('%s → %s', (_name, err, expected) => {
    expect(isConnectionError(err)).toBe(expected);
  });
});

describe('describeStoreConnectionError: what an operator reads when DATABASE_URL does not work', () => {
  /** Runs the migrations against `url` (real connection attempts) and describes what failed. */
  async function describeFailure(url: string): Promise<string> {
    const pool = createPool(url, { connectionTimeoutMillis: 500 });
    try {
      await runMigrations(pool);
      throw new Error('expected the store to be unreachable');
    } catch (err) {
      return describeStoreConnectionError(url, err);
    } finally {
      await pool.end();
    }
  }

  async function freeLocalPort(): Promise<number> {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    return port;
  }

  it('names host:port and "connection refused" for a port nobody listens on, never the password', async () => {
    const port = await freeLocalPort();
    const text = await describeFailure(`postgres://gw:s3cret-pw@127.0.0.1:${port}/gw`);
    expect(text).toBe(`cannot reach the user store at 127.0.0.1:${port}: connection refused (is PostgreSQL running there, on that port?)`);
  });

  it('says the host name does not resolve (DNS)', async () => {
    expect(await describeFailure('postgres://gw:s3cret-pw@no-such-host.invalid:5433/gw')).toBe(
      'cannot reach the user store at no-such-host.invalid:5433: the host name does not resolve (DNS)',
    );
  });

  it('says it timed out for a server that accepts but never answers', async () => {
    const held: Socket[] = [];
    const silent: Server = createServer((socket) => void held.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const text = await describeFailure(`postgres://gw@127.0.0.1:${port}/gw`);
      expect(text).toMatch(new RegExp(`^cannot reach the user store at 127\\.0\\.0\\.1:${port}: timed out while connecting`));
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('says which database is missing on a server that answers', async () => {
    const text = await describeFailure('postgres://postgres:pw@127.0.0.1:5432/gw_no_such_database_xyz');
    expect(text).toMatch(/^cannot reach the user store at 127\.0\.0\.1:5432: the database does not exist \(database "gw_no_such_database_xyz" does not exist\)$/);
  });

  it('says authentication failed, naming the user but not the password', () => {
    const err = Object.assign(new Error('password authentication failed for user "gw"'), { code: '28P01' });
    const text = describeStoreConnectionError('postgres://gw:s3cret-pw@db.example:5432/gw', err);
    expect(text).toBe('cannot reach the user store at db.example:5432: authentication failed for user "gw" (check the user and password in DATABASE_URL)');
  });

  it('names the socket directory of a socket URL (the embedded store)', () => {
    const err = Object.assign(new Error('connect ENOENT /srv/gw/run/.s.PGSQL.5432'), { code: 'ENOENT' });
    expect(describeStoreConnectionError('postgres://postgres@localhost/postgres?host=%2Fsrv%2Fgw%2Frun', err)).toBe(
      'cannot reach the user store at the Unix socket in /srv/gw/run: no PostgreSQL socket there (is the server running?)',
    );
  });
});
