import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, runMigrations } from './db.js';
import { EmbeddedStoreLockedError, LOCK_FILE_NAME, resolveStore, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
import { createUsersRepo } from './users-repo.js';

// One embedded store for the whole file: creating one costs several seconds (initdb in WASM).
let dataDir: string;
let store: EmbeddedPostgres | undefined;
const lockPath = (): string => path.join(dataDir, LOCK_FILE_NAME);

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  return child.pid!;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'gw-embedded-'));
  store = await startEmbeddedPostgres({ dataDir });
}, 60_000);

afterAll(async () => {
  await store?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 30_000);

describe('embedded store', () => {
  it('listens on loopback and publishes {pid, port} in the lock file', async () => {
    expect(store!.url).toBe(`postgres://postgres@127.0.0.1:${store!.port}/postgres`);
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toEqual({ pid: process.pid, port: store!.port });
    expect(existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);
  });

  it('runs the migrations and serves the users repo, with transactions from several connections', async () => {
    const pools = [createPool(store!.url, { max: 3 }), createPool(store!.url, { max: 3 })];
    try {
      // Two "processes" migrating at once: the shared session serialises their transactions.
      const applied = await Promise.all(pools.map((p) => runMigrations(p)));
      expect(applied.flat()).toEqual(['001_users', '002_username_key']);
      const repo = createUsersRepo(pools[0]!);
      await repo.create({ username: 'Sulu', passwordHash: 'h', groups: ['Helm'] });
      await expect(createUsersRepo(pools[1]!).create({ username: 'SULU', passwordHash: 'h' })).rejects.toMatchObject({ code: 'ERR_USER_EXISTS' });
      const found = await Promise.all(Array.from({ length: 10 }, (_, i) => createUsersRepo(pools[i % 2]!).findByUsername('sulu')));
      expect(found.map((u) => u?.groups)).toEqual(Array(10).fill(['Helm']));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  }, 20_000);

  it('refuses a second instance on the same data directory and says how to reach the first', async () => {
    const second = startEmbeddedPostgres({ dataDir });
    await expect(second).rejects.toBeInstanceOf(EmbeddedStoreLockedError);
    await expect(second).rejects.toThrow(`pid ${process.pid}`);
    await expect(second).rejects.toThrow(`127.0.0.1:${store!.port}`);
  });

  it('resolves to the running instance through its port, and to DATABASE_URL when that is set', async () => {
    const running = await resolveStore({ dataDir });
    expect(running).toMatchObject({ kind: 'embedded-running', url: store!.url });
    await running.stop(); // does not stop someone else's store
    expect(existsSync(lockPath())).toBe(true);

    const external = await resolveStore({ databaseUrl: 'postgres://db.example/app', dataDir });
    expect(external).toMatchObject({ kind: 'postgres', url: 'postgres://db.example/app' });
  });

  it('does not take over a live owner that stopped answering (pid reuse), and says which file to delete', async () => {
    const saved = await readFile(lockPath(), 'utf8');
    // Our own pid is certainly alive; port 1 certainly has no server.
    await writeFile(lockPath(), JSON.stringify({ pid: process.pid, port: 1 }));
    try {
      await expect(resolveStore({ dataDir })).rejects.toThrow(`nothing answers there. If pid ${process.pid} is not the gateway, delete ${lockPath()}`);
    } finally {
      await writeFile(lockPath(), saved);
    }
  });

  it('removes its lock on stop, takes over a stale lock on restart, and keeps the data', async () => {
    await store!.stop();
    store = undefined;
    expect(existsSync(lockPath())).toBe(false);

    await writeFile(lockPath(), JSON.stringify({ pid: deadPid(), port: 1 }));
    const resolved = await resolveStore({ dataDir });
    try {
      expect(resolved.kind).toBe('embedded-own');
      expect(JSON.parse(await readFile(lockPath(), 'utf8')).pid).toBe(process.pid);
      const pool = createPool(resolved.url, { max: 1 });
      try {
        expect((await createUsersRepo(pool).findByUsername('sulu'))?.username).toBe('Sulu');
      } finally {
        await pool.end();
      }
    } finally {
      await resolved.stop();
    }
    expect(existsSync(lockPath())).toBe(false);
  }, 30_000);

  it('treats an unreadable lock file as stale', async () => {
    await writeFile(lockPath(), 'garbage');
    store = await startEmbeddedPostgres({ dataDir });
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toEqual({ pid: process.pid, port: store.port });
  }, 30_000);
});
