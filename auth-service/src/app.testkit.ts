/**
 * Test-only helpers: run `createApp` over real HTTP against a real PostgreSQL database, with raw
 * requests (exact headers, no cookie jar, no redirects followed) and captured JSON log lines.
 */
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { createFreshDatabase, type FreshDatabase } from '../../tests/support/fresh-database.js';
import { hiddenFields, rawRequest, setCookies, type HttpResult } from '../../tests/support/http.js';

export { hiddenFields, rawRequest, setCookies, type HttpResult };
import { createApp, type AppDeps } from './app.js';
import { loadConfig, type AuthConfig, type Env } from './config.js';
import { LOG_OPTIONS } from './logger.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY, type PasswordHasher, type PasswordPolicy } from './passwords/index.js';
import { createPool, runMigrations } from './storage/db.js';
import { createUsersRepo, type UserRecord, type UsersRepo } from './storage/users-repo.js';
import { createAuditRepo } from './storage/audit-repo.js';
import { createSessionsRepo } from './storage/sessions-repo.js';

/** The sessions and audit repos on the same database as a users repo from openTestDatabase. */
const storageOf = new WeakMap<UsersRepo, NonNullable<AppDeps['storage']>>();

/** The sessions and audit repos that go with a users repo from openTestDatabase (undefined for any other). */
export function storageFor(repo: UsersRepo): AppDeps['storage'] {
  return storageOf.get(repo);
}

/** A fixed clock: 2025-06-15T15:06:40Z. */
export const FIXED_NOW_MS = 1_750_000_000_000;

/** Fresh random secrets per test run (48 bytes, base64url), never committed values. */
export const TEST_SECRET = randomBytes(48).toString('base64url');
export const TEST_PREVIOUS_SECRET = randomBytes(48).toString('base64url');

/** Cheap hashing for tests (the production minimum is enforced by config, not by the hasher). */
export const FAST_POLICY: PasswordPolicy = { ...DEFAULT_PASSWORD_POLICY, pbkdf2Iterations: 1000 };

export function testEnv(overrides: Env = {}): Env {
  return {
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/unused',
    JWT_SECRET: TEST_SECRET,
    BRAND_NAME: 'Acme Gateway',
    ...overrides,
  };
}

export function testConfig(overrides: Env = {}): AuthConfig {
  const loaded = loadConfig(testEnv(overrides));
  if (!loaded.ok) throw new Error(`test config invalid:\n${loaded.errors.join('\n')}`);
  return loaded.config;
}


export type LogLine = Record<string, unknown> & { event?: string };

export interface TestDatabase {
  db: FreshDatabase;
  pool: ReturnType<typeof createPool>;
  repo: UsersRepo;
  createUser(username: string, password: string, opts?: Partial<Pick<UserRecord, 'email' | 'fullName' | 'groups'>> & { hasher?: PasswordHasher }): Promise<UserRecord>;
  close(): Promise<void>;
}

/** A fresh, migrated database with a users repo; users are hashed with FAST_POLICY unless told. */
export async function openTestDatabase(): Promise<TestDatabase> {
  const db = await createFreshDatabase();
  const pool = createPool(db.url, { max: 4 });
  await runMigrations(pool);
  const repo = createUsersRepo(pool);
  storageOf.set(repo, { sessions: createSessionsRepo(pool), audit: createAuditRepo(pool) });
  const hasher = createPasswordHasher(FAST_POLICY);
  return {
    db,
    pool,
    repo,
    async createUser(username, password, opts = {}) {
      return repo.create({
        username,
        passwordHash: await (opts.hasher ?? hasher).hash(password),
        email: opts.email ?? null,
        fullName: opts.fullName ?? null,
        groups: opts.groups ?? [],
      });
    },
    async close() {
      await pool.end();
      await db.drop();
    },
  };
}

export interface TestApp {
  port: number;
  config: AuthConfig;
  logs: LogLine[];
  /** Log lines of one event. */
  events(event: string): LogLine[];
  /** Everything logged, as raw text (to assert that secrets never appear). */
  rawLogs(): string;
  request(method: string, path: string, headers?: OutgoingHttpHeaders, body?: string | Buffer): Promise<HttpResult>;
  /** GET /login; returns the CSRF cookie pair and the hidden form fields. */
  loginForm(rd?: string): Promise<{ csrfCookie: string; fields: Record<string, string>; page: HttpResult }>;
  /** GET the form, then POST it with the given credentials. */
  login(username: string, password: string, opts?: { rd?: string; headers?: OutgoingHttpHeaders }): Promise<HttpResult>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Env;
  usersRepo: UsersRepo;
  hasher?: PasswordHasher;
  deps?: Partial<AppDeps>;
  /** Listen on this address (default 127.0.0.1). */
  listenHost?: string;
}

export async function startTestApp(opts: TestAppOptions): Promise<TestApp> {
  const config = testConfig(opts.env);
  const logs: LogLine[] = [];
  let raw = '';
  const logger: Logger = pino(
    // The service's own timestamp and client-address mixin; no redaction, so a leak shows in rawLogs().
    { level: 'trace', base: null, timestamp: LOG_OPTIONS.timestamp, mixin: LOG_OPTIONS.mixin, formatters: { level: (label) => ({ level: label }) } },
    {
      write(line: string) {
        raw += line;
        logs.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const app = createApp({
    config,
    usersRepo: opts.usersRepo,
    hasher: opts.hasher ?? createPasswordHasher(FAST_POLICY),
    logger,
    now: () => FIXED_NOW_MS,
    // A users repo from openTestDatabase brings its database's sessions and audit trail; any other
    // (a store that is down, a wrapper) gets none, so sign-in fails closed unless the test passes them.
    storage: storageOf.get(opts.usersRepo),
    ...opts.deps,
  });
  const server: Server = createServer(app);
  const host = opts.listenHost ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;

  const request = (method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: string | Buffer) =>
    rawRequest(port, method, path, headers, body);

  const testApp: TestApp = {
    port,
    config,
    logs,
    events: (event) => logs.filter((l) => l.event === event),
    rawLogs: () => raw,
    request,
    async loginForm(rd) {
      const page = await request('GET', rd === undefined ? '/login' : `/login?rd=${encodeURIComponent(rd)}`, { host: `127.0.0.1:${port}` });
      const csrfCookie = setCookies(page)
        .map((c) => c.split(';')[0]!)
        .find((c) => c.startsWith('gw_csrf='));
      if (!csrfCookie) throw new Error(`no CSRF cookie (status ${page.status})`);
      return { csrfCookie, fields: hiddenFields(page.body), page };
    },
    async login(username, password, o = {}) {
      const form = await testApp.loginForm(o.rd);
      return postForm(testApp, { ...form.fields, username, password }, { cookie: form.csrfCookie, ...o.headers });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return testApp;
}

/** POST /login as a browser on http://127.0.0.1:<port> would (Origin and Host match). */
export function postForm(app: TestApp, fields: Record<string, string>, headers: OutgoingHttpHeaders = {}): Promise<HttpResult> {
  const body = new URLSearchParams(fields).toString();
  return app.request(
    'POST',
    '/login',
    {
      host: `127.0.0.1:${app.port}`,
      origin: `http://127.0.0.1:${app.port}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    },
    body,
  );
}

/** Decodes a JWT segment without verifying anything (tests only). */
export function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * A test file's database and the apps its tests start on it, with the jest hooks that open the
 * database (then `seed` it), close the apps each test started, and close the database at the end.
 * `start` runs startTestApp over that database, with `defaults` under the test's own options.
 */
export function appsOnTestDatabase(
  seed: (db: TestDatabase) => Promise<unknown> = async () => undefined,
  defaults: Partial<TestAppOptions> = {},
): { readonly db: TestDatabase; start(opts?: Partial<TestAppOptions>): Promise<TestApp> } {
  let db: TestDatabase | undefined;
  const open: TestApp[] = [];
  const database = (): TestDatabase => {
    if (db === undefined) throw new Error('the test database is opened in beforeAll');
    return db;
  };
  beforeAll(async () => {
    db = await openTestDatabase();
    await seed(db);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await db?.close();
  });
  return {
    get db() {
      return database();
    },
    async start(opts = {}) {
      const app = await startTestApp({ usersRepo: database().repo, ...defaults, ...opts });
      open.push(app);
      return app;
    },
  };
}
