import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Embedded PostgreSQL for running without a database server: PGlite (Postgres compiled to WASM) served
 * on 127.0.0.1 by pglite-socket, so the ordinary `pg` client connects to it.
 *
 * PGlite facts this file is built around (see docs/platform-notes):
 * - one process may open a data directory; PGlite takes no lock, and two openers corrupt it. We take our
 *   own lock file, and other processes (the users CLI) go through the running server instead;
 * - all socket connections share one Postgres session and run one statement at a time; a transaction on
 *   one connection holds back the others until it ends;
 * - the socket server accepts a single connection unless told otherwise.
 */

export const LOCK_FILE_NAME = 'embedded-pg.lock';
export const DEFAULT_MAX_CONNECTIONS = 20;

export interface EmbeddedPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** Closes the server and the database, then removes the lock. Safe to call twice. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Total connections across all clients and processes. Default 20. */
  maxConnections?: number;
}

export interface LockInfo {
  pid: number;
  /** 0 while the owner is still starting. */
  port: number;
}

export class EmbeddedStoreLockedError extends Error {
  readonly lock: LockInfo;
  readonly lockPath: string;
  constructor(lockPath: string, lock: LockInfo) {
    const where = lock.port > 0 ? `it serves postgres://postgres@127.0.0.1:${lock.port}/postgres` : 'it is still starting';
    super(
      `Another process (pid ${lock.pid}) holds the embedded user store at ${path.dirname(lockPath)}; ${where}. ` +
        `Stop that process, point DATABASE_URL at its server, or, if pid ${lock.pid} is not ours, delete ${lockPath}.`,
    );
    this.name = 'EmbeddedStoreLockedError';
    this.lock = lock;
    this.lockPath = lockPath;
  }
}

export function embeddedUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    const value = JSON.parse(text) as Partial<LockInfo>;
    if (Number.isSafeInteger(value.pid) && value.pid! > 0 && Number.isSafeInteger(value.port) && value.port! >= 0) {
      return { pid: value.pid!, port: value.port! };
    }
  } catch {
    // fall through
  }
  return null;
}

/**
 * Reads the lock. `null` when there is none; `stale` when its owner is gone or its content is unreadable.
 * The lock is always written whole (temp file + link/rename), so unreadable content is never a lock being
 * written.
 */
export async function readLock(dataDir: string): Promise<{ state: 'live'; lock: LockInfo } | { state: 'stale'; text: string } | null> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const lock = parseLock(text);
  if (lock && isProcessAlive(lock.pid)) return { state: 'live', lock };
  return { state: 'stale', text };
}

async function writeTemp(dataDir: string, info: LockInfo): Promise<string> {
  const temp = path.join(dataDir, `.${LOCK_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(temp, `${JSON.stringify(info)}\n`, { flag: 'wx', mode: 0o600 });
  return temp;
}

/**
 * Creates the lock exclusively. link() fails with EEXIST like open(O_CREAT|O_EXCL) ('wx') does, but the
 * file appears with its content already in it, so no reader ever sees an empty lock.
 */
async function acquireLock(dataDir: string): Promise<void> {
  const lockPath = path.join(dataDir, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const temp = await writeTemp(dataDir, { pid: process.pid, port: 0 });
    try {
      await link(temp, lockPath);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    const current = await readLock(dataDir);
    if (current === null) continue;
    if (current.state === 'live') throw new EmbeddedStoreLockedError(lockPath, current.lock);
    // Take over a stale lock. rename() is atomic, so of two processes doing this only one moves the
    // file; if what we moved turns out to be a fresh lock (it replaced the stale one after we read it),
    // we put it back and give up.
    const moved = `${lockPath}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await rename(lockPath, moved);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const movedText = await readFile(moved, 'utf8');
    const movedLock = parseLock(movedText);
    if (movedText !== current.text && movedLock && isProcessAlive(movedLock.pid)) {
      await link(moved, lockPath).catch(() => undefined);
      await unlink(moved).catch(() => undefined);
      throw new EmbeddedStoreLockedError(lockPath, movedLock);
    }
    await unlink(moved).catch(() => undefined);
  }
  throw new Error(`Could not take the embedded store lock ${lockPath}: it keeps changing.`);
}

async function publishPort(dataDir: string, port: number): Promise<void> {
  const temp = await writeTemp(dataDir, { pid: process.pid, port });
  await rename(temp, path.join(dataDir, LOCK_FILE_NAME));
}

/** Removes the lock if it is still ours. Synchronous so it can run in a process 'exit' handler. */
function releaseLockSync(dataDir: string): void {
  const lockPath = path.join(dataDir, LOCK_FILE_NAME);
  try {
    if (!existsSync(lockPath)) return;
    const lock = parseLock(readFileSync(lockPath, 'utf8'));
    if (lock?.pid === process.pid) unlinkSync(lockPath);
  } catch {
    // Best effort: a lock left behind is taken over as stale by the next start.
  }
}

/**
 * Starts the embedded store on 127.0.0.1 with its data under `<dataDir>/pgdata`, holding
 * `<dataDir>/embedded-pg.lock` (`{pid, port}`) while it runs. A lock whose pid is dead is taken over;
 * a live one throws EmbeddedStoreLockedError, which says how to reach the running store.
 * Creating a new store takes several seconds (initdb in WASM); reopening one about a second.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // pgdata is private whatever the umask: DATA_DIR itself may be searchable by others (0711, so that
  // nginx's workers reach the prefix under it), and the database holds the password hashes.
  await mkdir(path.join(dataDir, 'pgdata'), { recursive: true, mode: 0o700 });
  await chmod(path.join(dataDir, 'pgdata'), 0o700);
  await acquireLock(dataDir);
  const onExit = (): void => releaseLockSync(dataDir);
  process.on('exit', onExit);

  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    db = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    server = new PGLiteSocketServer({
      db,
      host: '127.0.0.1',
      port: opts.port ?? 0,
      maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    });
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    if (!Number.isInteger(port) || port <= 0) throw new Error(`embedded store reported no port (${server.getServerConn()})`);
    await publishPort(dataDir, port);

    let stopping: Promise<void> | undefined;
    const runningServer = server;
    const runningDb = db;
    return {
      url: embeddedUrl(port),
      port,
      stop() {
        stopping ??= (async () => {
          try {
            await runningServer.stop();
            await runningDb.close();
          } finally {
            process.off('exit', onExit);
            releaseLockSync(dataDir);
          }
        })();
        return stopping;
      },
    };
  } catch (err) {
    await server?.stop().catch(() => undefined);
    await db?.close().catch(() => undefined);
    process.off('exit', onExit);
    releaseLockSync(dataDir);
    throw err;
  }
}

export type StoreKind = 'postgres' | 'embedded-running' | 'embedded-own';

export interface ResolvedStore {
  url: string;
  kind: StoreKind;
  /** Stops the embedded store if this call started it; otherwise does nothing. */
  stop(): Promise<void>;
}

export interface ResolveStoreOptions {
  databaseUrl?: string;
  dataDir: string;
  /** How long to wait for a store that another process is still starting. Default 30 s. */
  startupWaitMillis?: number;
}

const noop = async (): Promise<void> => undefined;

/** True if something accepts a TCP connection on 127.0.0.1:port within `timeoutMillis`. */
function isListening(port: number, timeoutMillis = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMillis, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Picks the store: DATABASE_URL if set; else the embedded store that another live process is serving
 * from `dataDir` (reached through its port, never by opening the files); else a new embedded instance
 * owned by the caller. A lock whose live owner does not answer on its port is an error, not taken over
 * (the pid may be reused by an unrelated process, or the owner may be hung).
 */
export async function resolveStore(opts: ResolveStoreOptions): Promise<ResolvedStore> {
  const databaseUrl = opts.databaseUrl?.trim();
  if (databaseUrl) return { url: databaseUrl, kind: 'postgres', stop: noop };

  const dataDir = path.resolve(opts.dataDir);
  const deadline = Date.now() + (opts.startupWaitMillis ?? 30_000);
  for (;;) {
    const current = await readLock(dataDir);
    if (current?.state === 'live') {
      if (current.lock.port > 0) {
        if (await isListening(current.lock.port)) return { url: embeddedUrl(current.lock.port), kind: 'embedded-running', stop: noop };
        // A live pid but nothing on its port: most likely the pid was reused after a crash.
        const lockPath = path.join(dataDir, LOCK_FILE_NAME);
        throw new Error(
          `${lockPath} names pid ${current.lock.pid} on port ${current.lock.port}, but nothing answers there. ` +
            `If pid ${current.lock.pid} is not the gateway, delete ${lockPath}.`,
        );
      }
      if (Date.now() > deadline) throw new EmbeddedStoreLockedError(path.join(dataDir, LOCK_FILE_NAME), current.lock);
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    try {
      const own = await startEmbeddedPostgres({ dataDir });
      return { url: own.url, kind: 'embedded-own', stop: () => own.stop() };
    } catch (err) {
      // Someone else started it between our look and our start: go through theirs.
      if (err instanceof EmbeddedStoreLockedError && Date.now() <= deadline) continue;
      throw err;
    }
  }
}
