import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { chmod, link, mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * Embedded PostgreSQL for running without a database server: PGlite (Postgres compiled to WASM) served
 * by pglite-socket on a Unix socket, so the ordinary `pg` client connects to it.
 *
 * The wire protocol server has no authentication at all, so it must not listen on TCP: any local
 * account could read the password hashes or rewrite groups. The socket lives in `<dataDir>/run`, a
 * directory of mode 0700, so only the account that runs the gateway (and root) can reach it; the users
 * CLI, run by the same account, connects through it.
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
/** The private directory (0700) under the data directory that holds the socket. */
export const SOCKET_DIR_NAME = 'run';
/** libpq and `pg` look for `<host>/.s.PGSQL.<port>`; the port is only part of the file name here. */
const SOCKET_PORT = 5432;
/** sun_path is 108 bytes on Linux, including the final NUL. */
const MAX_SOCKET_PATH = 107;

export interface EmbeddedPostgres {
  /** postgres://postgres@localhost/postgres?host=<dataDir>/run (a Unix socket; no TCP port) */
  url: string;
  /** The socket file. */
  socketPath: string;
  /** Closes the server and the database, then removes the lock. Safe to call twice. */
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  /** Total connections across all clients and processes. Default 20. */
  maxConnections?: number;
}

export interface LockInfo {
  pid: number;
  /** The socket path; '' while the owner is still starting. */
  socket: string;
}

export class EmbeddedStoreLockedError extends Error {
  readonly lock: LockInfo;
  readonly lockPath: string;
  constructor(lockPath: string, lock: LockInfo) {
    const where = lock.socket !== '' ? `it serves ${embeddedUrl(path.dirname(lock.socket))}` : 'it is still starting';
    super(
      `Another process (pid ${lock.pid}) holds the embedded user store at ${path.dirname(lockPath)}; ${where}. ` +
        `Stop that process, point DATABASE_URL at its server, or, if pid ${lock.pid} is not ours, delete ${lockPath}.`,
    );
    this.name = 'EmbeddedStoreLockedError';
    this.lock = lock;
    this.lockPath = lockPath;
  }
}

/**
 * The connection URL of the embedded store whose socket is in `socketDir`. `pg` and libpq let the
 * `host` query parameter (a socket directory) override the URL's host; `localhost` is only there
 * because a postgres:// URL needs one to parse.
 */
export function embeddedUrl(socketDir: string): string {
  return `postgres://postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}`;
}

function socketPathIn(dataDir: string): string {
  return path.join(dataDir, SOCKET_DIR_NAME, `.s.PGSQL.${SOCKET_PORT}`);
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
    const value = JSON.parse(text) as Partial<LockInfo> & { port?: unknown };
    if (!Number.isSafeInteger(value.pid) || value.pid! <= 0) return null;
    if (typeof value.socket === 'string') return { pid: value.pid!, socket: value.socket };
    // A lock written by an older version that served TCP ({pid, port}): its owner may still be
    // running, so it is a live lock with no socket to go through, never one to take over.
    if (Number.isSafeInteger(value.port)) return { pid: value.pid!, socket: '' };
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
    const temp = await writeTemp(dataDir, { pid: process.pid, socket: '' });
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

async function publishSocket(dataDir: string, socket: string): Promise<void> {
  const temp = await writeTemp(dataDir, { pid: process.pid, socket });
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
 * Opens `<dataDir>/run` (mode 0700, whatever existed) and removes a socket file left by an owner that
 * died: we hold the lock, so nobody else serves it.
 */
async function prepareSocketDir(dataDir: string): Promise<string> {
  const socketPath = socketPathIn(dataDir);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(`The embedded store's socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes, the system's limit: use a shorter DATA_DIR.`);
  }
  const dir = path.dirname(socketPath);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await rm(socketPath, { force: true });
  return socketPath;
}

/**
 * Starts the embedded store on the Unix socket `<dataDir>/run/.s.PGSQL.5432` (directory 0700: only
 * this account and root can connect; nothing listens on TCP) with its data under `<dataDir>/pgdata`,
 * holding `<dataDir>/embedded-pg.lock` (`{pid, socket}`) while it runs. A lock whose pid is dead is taken over;
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
    const socketPath = await prepareSocketDir(dataDir);
    db = await PGlite.create({ dataDir: path.join(dataDir, 'pgdata') });
    server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS });
    await server.start();
    await publishSocket(dataDir, socketPath);

    let stopping: Promise<void> | undefined;
    const runningServer = server;
    const runningDb = db;
    return {
      url: embeddedUrl(path.dirname(socketPath)),
      socketPath,
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

/** True if something accepts a connection on the Unix socket within `timeoutMillis`. */
function isListening(socketPath: string, timeoutMillis = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
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
 * from `dataDir` (reached through its socket, never by opening the files); else a new embedded instance
 * owned by the caller. A lock whose live owner does not answer on its socket is an error, not taken over
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
      if (current.lock.socket !== '') {
        const { socket } = current.lock;
        if (await isListening(socket)) return { url: embeddedUrl(path.dirname(socket)), kind: 'embedded-running', stop: noop };
        // A live pid but nothing on its socket: most likely the pid was reused after a crash.
        const lockPath = path.join(dataDir, LOCK_FILE_NAME);
        throw new Error(
          `${lockPath} names pid ${current.lock.pid} serving ${socket}, but nothing answers there. ` +
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
