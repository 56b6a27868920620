import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { AppError } from '../errors.js';

/** The part of a pino logger the storage layer uses. */
export interface StorageLogger {
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface PoolOptions {
  /** Pool size. With the embedded store, the pools of all processes together must stay below its connection limit. */
  max?: number;
  connectionTimeoutMillis?: number;
  /** Applied both server-side (statement_timeout) and client-side (query_timeout). */
  queryTimeoutMillis?: number;
  applicationName?: string;
  logger?: StorageLogger;
  /** Told of every failed `pool.query`, failed `pool.connect` and idle-client error (metrics). Must not throw. */
  onError?: (err: unknown) => void;
}

/** `<repo>/db/migrations`, found relative to this file. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../db/migrations/', import.meta.url));

const STORE_UNAVAILABLE_MESSAGE = 'The user store is unavailable. Try again shortly.';

const stderrLogger: StorageLogger = {
  warn(obj, msg) {
    process.stderr.write(`${JSON.stringify({ level: 'warn', time: Date.now(), ...obj, msg })}\n`);
  },
};

/**
 * A pg pool with short timeouts, so a dead or hung database turns into a quick 503 rather than hanging
 * requests. Errors on idle clients (database restarted, network cut) are logged and swallowed: pg emits
 * them on the pool, and an unhandled 'error' event would crash the process. The pool never uses named
 * prepared statements (the embedded store shares one session across connections, where they collide).
 */
export function createPool(databaseUrl: string, opts: PoolOptions = {}): pg.Pool {
  const queryTimeout = opts.queryTimeoutMillis ?? 5000;
  const logger = opts.logger ?? stderrLogger;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 2000,
    idleTimeoutMillis: 10_000,
    statement_timeout: queryTimeout,
    query_timeout: queryTimeout + 500,
    application_name: opts.applicationName ?? 'identity-gateway',
  });
  pool.on('error', (err: Error & { code?: string }) => {
    logger.warn({ event: 'db_pool_error', code: err.code, err: err.message }, 'idle database connection failed');
    opts.onError?.(err);
  });
  if (opts.onError) reportFailures(pool, opts.onError);
  return pool;
}

/**
 * Calls `report` with the error of each `pool.query` and `pool.connect` promise that rejects. The
 * caller still gets the original promise and handles its rejection; the callback forms are untouched.
 */
function reportFailures(pool: pg.Pool, report: (err: unknown) => void): void {
  type Call = (...args: unknown[]) => unknown;
  const wrap = (call: Call): Call => (...args) => {
    const result = call(...args);
    if (result instanceof Promise) result.catch(report);
    return result;
  };
  const target = pool as unknown as { query: Call; connect: Call };
  target.query = wrap(pool.query.bind(pool) as Call);
  target.connect = wrap(pool.connect.bind(pool) as Call);
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovery)
  '57014', // query_canceled: our statement_timeout fired
  '53300', // too_many_connections
]);

const CONNECTION_ERROR_MESSAGES = [
  /timeout exceeded when trying to connect/i,
  /connection terminated/i,
  /query read timeout/i,
  /connection timeout/i,
  /client has encountered a connection error/i,
  /cannot use a pool after calling end/i,
];

/**
 * True for errors that mean "the database cannot be reached right now" rather than "this query is
 * wrong": socket errors, pg connect/query timeouts, SQLSTATE class 08 and 57P01..03. Node's happy-eyeballs
 * connect reports an AggregateError; its inner errors are checked.
 */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message, errors } = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  if (typeof message === 'string' && CONNECTION_ERROR_MESSAGES.some((re) => re.test(message))) return true;
  if (Array.isArray(errors)) return errors.some(isConnectionError);
  return false;
}

/** Rethrows connection-class errors as AppError('ERR_STORE_UNAVAILABLE', 503); others unchanged. */
export function toStoreError(err: unknown): unknown {
  if (isConnectionError(err)) return new AppError('ERR_STORE_UNAVAILABLE', 503, STORE_UNAVAILABLE_MESSAGE, { cause: err });
  return err;
}

const MIGRATION_FILE = /^(\d+)_[A-Za-z0-9_-]+\.sql$/;
/** Any constant works; it only has to be the same in every process that migrates this database. */
const MIGRATION_LOCK_KEY = 7_283_401_551;

async function listMigrations(dir: string): Promise<Array<{ version: string; file: string }>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql'));
  const seen = new Map<number, string>();
  const migrations = files.map((file) => {
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`Migration file name must look like 001_name.sql: ${file}`);
    const number = Number(match[1]);
    const clash = seen.get(number);
    if (clash !== undefined) throw new Error(`Two migrations share number ${number}: ${clash} and ${file}`);
    seen.set(number, file);
    return { number, version: file.replace(/\.sql$/, ''), file };
  });
  migrations.sort((a, b) => a.number - b.number);
  return migrations.map(({ version, file }) => ({ version, file }));
}

/**
 * Applies the `NNN_name.sql` files in `migrationsDir` that are not yet recorded in `schema_migrations`,
 * in numeric order, each in its own short transaction. Each transaction first takes a transaction-scoped
 * advisory lock, so two processes starting together on the same database apply every file exactly once.
 * Files are plain SQL run as one simple-protocol query (no parameters; nothing that cannot run inside a
 * transaction, such as CREATE INDEX CONCURRENTLY). Returns the versions it applied.
 *
 * Not checked: that files already applied are unchanged (forward-only: add a new file instead).
 */
export async function runMigrations(pool: pg.Pool, migrationsDir: string = DEFAULT_MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await listMigrations(migrationsDir);
  const applied: string[] = [];
  try {
    for (const migration of migrations) {
      const sql = await readFile(path.join(migrationsDir, migration.file), 'utf8');
      const client = await pool.connect();
      let ok = false;
      // As in inTransaction: a connection dropped between two queries must not crash the process.
      let dropped = false;
      const onDropped = (): void => {
        dropped = true;
      };
      client.on('error', onDropped);
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await client.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
        if (done.rowCount === 0) {
          await client.query(sql);
          await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
          applied.push(migration.version);
        }
        await client.query('COMMIT');
        ok = true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (!isConnectionError(err) && err instanceof Error) {
          err.message = `migration ${migration.file} failed: ${err.message}`;
        }
        throw err;
      } finally {
        client.off('error', onDropped);
        // A client whose transaction failed (or whose connection dropped) is discarded rather than returned to the pool.
        client.release(!ok || dropped);
      }
    }
  } catch (err) {
    throw toStoreError(err);
  }
  return applied;
}

/** The user, host and port of a postgres:// URL (a `host=` query parameter, a socket directory, wins). */
function connectionTarget(databaseUrl: string): { user: string | null; host: string; port: string } {
  const m = /^[a-z]+:\/\/(?:([^:@/]*)(?::[^@/]*)?@)?(\[[^\]]*\]|[^:/?]*)(?::([0-9]*))?/i.exec(databaseUrl);
  const query = /[?&]host=([^&]*)/.exec(databaseUrl);
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return {
    user: m?.[1] ? decode(m[1]) : null,
    host: query ? decode(query[1]!) : m?.[2] || 'localhost',
    port: m?.[3] || '5432',
  };
}

/** Where DATABASE_URL points, as host:port or socket directory, never with the user's password. */
export function describeStoreTarget(databaseUrl: string): string {
  const { host, port } = connectionTarget(databaseUrl);
  return host.startsWith('/') ? `the Unix socket in ${host}` : `${host}:${port}`;
}

/** The first error with a `code`, looking inside AggregateError (Node's happy-eyeballs connect). */
function innermostCode(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e?.code === 'string' && e.code !== 'ERR_STORE_UNAVAILABLE') return { code: e.code, message: String(e.message ?? '') };
  if (Array.isArray(e?.errors) && e.errors.length > 0) return innermostCode(e.errors[0]);
  const own = { message: typeof e?.message === 'string' ? e.message : String(err) };
  if (e?.cause === undefined) return own;
  // Our AppError wraps the real error; pg's timeout error wraps a vaguer "terminated" one.
  const inner = innermostCode(e.cause);
  return e?.code === 'ERR_STORE_UNAVAILABLE' || inner.code !== undefined ? inner : own;
}

/**
 * "cannot reach the user store at db.example:5432: connection refused (…)": the target (no password)
 * and the cause in words an operator can act on: refused, DNS, authentication, timeout, missing
 * database. For start-up messages and logs; the login page keeps its generic 503.
 */
export function describeStoreConnectionError(databaseUrl: string, err: unknown): string {
  const target = describeStoreTarget(databaseUrl);
  const { code, message } = innermostCode(err);
  const user = connectionTarget(databaseUrl).user ?? 'the default user';
  const cause = (() => {
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused (is PostgreSQL running there, on that port?)';
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return 'the host name does not resolve (DNS)';
      case 'ENOENT':
        return 'no PostgreSQL socket there (is the server running?)';
      case 'EACCES':
        return 'permission denied on the socket';
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return `the host cannot be reached (${code})`;
      case '28P01':
      case '28000':
        return `authentication failed for user "${user}" (check the user and password in DATABASE_URL)`;
      case '3D000':
        return `the database does not exist (${message})`;
      case '57P03':
        return 'the server is starting up or shutting down';
      default:
        if (/timeout/i.test(message)) return 'timed out while connecting (a firewall, or a server that does not answer)';
        return message === '' ? 'unknown error' : message;
    }
  })();
  return `cannot reach the user store at ${target}: ${cause}`;
}

/** What the repositories need: a pool, or one client inside a transaction. */
export interface Queryable {
  query: pg.Pool['query'];
}

/**
 * Runs `fn` in one transaction on one client: COMMIT when it resolves, ROLLBACK when it throws (the
 * error is rethrown, connection-class errors as ERR_STORE_UNAVAILABLE). Keep `fn` short: on the
 * embedded store an open transaction holds back every other connection.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw toStoreError(err);
  }
  let ok = false;
  // A connection that drops while the client is checked out between two queries makes pg emit
  // 'error' on the client, and an 'error' nobody listens to crashes the process. The next query
  // (or COMMIT) then fails and the client is discarded below.
  let dropped = false;
  const onDropped = (): void => {
    dropped = true;
  };
  client.on('error', onDropped);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    ok = true;
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw toStoreError(err);
  } finally {
    client.off('error', onDropped);
    // A client whose transaction failed (or whose connection dropped) is discarded rather than returned to the pool.
    client.release(!ok || dropped);
  }
}

/** `db.query`, with connection-class failures rethrown as AppError('ERR_STORE_UNAVAILABLE', 503). */
export async function queryStore<R extends pg.QueryResultRow>(db: Queryable, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await db.query<R>(text, values);
  } catch (err) {
    throw toStoreError(err);
  }
}
