import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, runMigrations } from './db.js';
import { EmbeddedStoreLockedError, LOCK_FILE_NAME, resolveStore, startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';
import { createUsersRepo } from './users-repo.js';
import { createAuditRepo } from './audit-repo.js';
import { createSessionsRepo } from './sessions-repo.js';

// One embedded store for the whole file: creating one costs several seconds (initdb in WASM).
let dataDir: string;
let store: EmbeddedPostgres | undefined;
const lockPath = (): string => path.join(dataDir, LOCK_FILE_NAME);
const store0Socket = (): string => path.join(dataDir, 'run', '.s.PGSQL.5432');

/** Local ports that `pid` listens on over TCP (v4 or v6), from /proc: its socket inodes in LISTEN state. */
function tcpListenersOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9]!)) ports.push(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

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
  it('listens on a Unix socket in a private directory, not on TCP, and publishes {pid, socket} in the lock file', async () => {
    const socketDir = path.join(dataDir, 'run');
    expect(store!.socketPath).toBe(path.join(socketDir, '.s.PGSQL.5432'));
    expect(store!.url).toBe(`postgres://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`);
    expect((await stat(socketDir)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toEqual({ pid: process.pid, socket: store!.socketPath });
    expect(existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);
    expect(tcpListenersOf(process.pid)).toEqual([]);
  });

  // The wire-protocol server has no authentication: whoever can connect can read the password hashes
  // and rewrite groups. Another local account (here `nobody`) must not be able to connect at all.
  (process.getuid?.() === 0 ? it : it.skip)('refuses another local account (nobody), which the owner reaches through the same URL', async () => {
    // The data directory may be searchable by others (nginx's workers traverse it): make it so here.
    await chmod(dataDir, 0o711);
    // Asynchronously: the store is served by this very process's event loop.
    const asOwner = await run('psql', [store!.url, '-XAtc', 'SELECT 1']);
    expect(asOwner.stdout.trim()).toBe('1');
    const asNobody = await run('runuser', ['-u', 'nobody', '--', 'psql', store!.url, '-XAtc', 'SELECT count(*) FROM users']);
    expect(asNobody.code).not.toBe(0);
    expect(asNobody.stderr).toMatch(/Permission denied/);
  }, 20_000);

  it('runs the migrations and serves the users repo, with transactions from several connections', async () => {
    const pools = [createPool(store!.url, { max: 3 }), createPool(store!.url, { max: 3 })];
    try {
      // Two "processes" migrating at once: the shared session serialises their transactions. Which
      // process applies which file is a race (each file is its own transaction), so the test checks
      // that every file was applied exactly once, by one of them.
      const applied = await Promise.all(pools.map((p) => runMigrations(p)));
      expect(applied.flat().sort()).toEqual(['001_users', '002_username_key', '003_sessions_audit', '004_session_idp_refresh', '005_sessions_revoked_at', '006_auth_events_app', '007_sso_handoffs']);
      const repo = createUsersRepo(pools[0]!);
      await repo.create({ username: 'Sulu', passwordHash: 'h', groups: ['Helm'] });
      await expect(createUsersRepo(pools[1]!).create({ username: 'SULU', passwordHash: 'h' })).rejects.toMatchObject({ code: 'ERR_USER_EXISTS' });
      const found = await Promise.all(Array.from({ length: 10 }, (_, i) => createUsersRepo(pools[i % 2]!).findByUsername('sulu')));
      expect(found.map((u) => u?.groups)).toEqual(Array(10).fill(['Helm']));
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  }, 20_000);

  it('keeps sessions and the append-only audit trail (plpgsql trigger, SET LOCAL purge) on PGlite', async () => {
    const pool = createPool(store!.url, { max: 2 });
    try {
      const sessions = createSessionsRepo(pool);
      await sessions.open({
        sid: 'embedded-session-id-0001', username: 'Sulu', userKey: 'local:sulu', source: 'local', src: 'local', clientIp: '192.0.2.1',
        userAgent: null, groups: ['Helm'], idpSid: null, nowMs: Date.now(), idleSeconds: 60, maxSeconds: 120, requestId: 'r1',
      });
      expect(await sessions.revokeUser('local:sulu', { event: 'revoke', reason: 'test' })).toBe(1);
      await expect(pool.query("UPDATE auth_events SET reason = 'x'")).rejects.toMatchObject({ code: '42501' });
      await expect(pool.query('DELETE FROM auth_events')).rejects.toMatchObject({ code: '42501' });
      await pool.query("INSERT INTO auth_events (at, event, reason) VALUES (now() - interval '10 days', 'login_failure', 'old')");
      expect(await createAuditRepo(pool).purge(5)).toBe(1);
      expect((await createAuditRepo(pool).tail({ user: { userKey: 'local:sulu', nameKey: 'sulu' }, limit: 10 })).map((e) => e.event)).toEqual(['login_success', 'revoke']);
    } finally {
      await pool.end();
    }
  }, 20_000);

  it('refuses a second instance on the same data directory and says how to reach the first', async () => {
    const second = startEmbeddedPostgres({ dataDir });
    await expect(second).rejects.toBeInstanceOf(EmbeddedStoreLockedError);
    await expect(second).rejects.toThrow(`pid ${process.pid}`);
    await expect(second).rejects.toThrow(store!.url);
  });

  it('resolves to the running instance through its socket, and to DATABASE_URL when that is set', async () => {
    const running = await resolveStore({ dataDir });
    expect(running).toMatchObject({ kind: 'embedded-running', url: store!.url });
    await running.stop(); // does not stop someone else's store
    expect(existsSync(lockPath())).toBe(true);

    const external = await resolveStore({ databaseUrl: 'postgres://db.example/app', dataDir });
    expect(external).toMatchObject({ kind: 'postgres', url: 'postgres://db.example/app' });
  });

  it('does not take over a live owner that stopped answering (pid reuse), and says which file to delete', async () => {
    const saved = await readFile(lockPath(), 'utf8');
    // Our own pid is certainly alive; a socket path that does not exist certainly has no server.
    await writeFile(lockPath(), JSON.stringify({ pid: process.pid, socket: path.join(dataDir, 'run', 'gone') }));
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

    await writeFile(lockPath(), JSON.stringify({ pid: deadPid(), socket: store0Socket() }));
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
    expect(JSON.parse(await readFile(lockPath(), 'utf8'))).toEqual({ pid: process.pid, socket: store.socketPath });
  }, 30_000);
});
