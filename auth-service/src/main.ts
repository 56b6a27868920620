/**
 * Wires the auth service together and listens. `startAuthService` is what the launcher
 * (scripts/up.ts) and the integration tests call in-process; running this file directly
 * (`tsx auth-service/src/main.ts`) starts it from process.env and stops it on SIGTERM/SIGINT.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DestinationStream, Logger } from 'pino';
import { createApp } from './app.js';
import { loadCustomAuthenticator } from './authenticators/custom.js';
import { createLocalAuthenticator } from './authenticators/local.js';
import { createTableauAuthenticator, tableauFetch } from './authenticators/tableau.js';
import type { PasswordAuthenticator } from './authenticators/types.js';
import type { PasswordSource } from './config.js';
import { loadConfig, type AuthConfig, type Env } from './config.js';
import { AppError, isAppError } from './errors.js';
import { createLogger, errorSummary } from './logger.js';
import { createMetrics, type AuthMetrics } from './metrics.js';
import { createHashingLimiter, createPasswordHasher, limitPasswordHashing, startHashingThreads } from './passwords/index.js';
import { createGroupSelectionSource, type GroupSelectionSource } from './services/group-selection-source.js';
import { createOidcService } from './services/oidc.js';
import { writeGateFiles } from './services/gate-files.js';
import { sealTableauCredentials } from './services/tableau-token.js';
import { createPool, describeStoreConnectionError, describeStoreTarget, isConnectionError, runMigrations } from './storage/db.js';
import { createUsersRepo } from './storage/users-repo.js';
import { createAuditRepo } from './storage/audit-repo.js';
import { createSessionsRepo } from './storage/sessions-repo.js';
import { createHandoffsRepo } from './storage/handoffs-repo.js';
import { startRetentionJob } from './services/audit-retention.js';

export interface StartOptions {
  /** Where the JSON log lines go (default: stdout). */
  logStream?: DestinationStream;
  /** Milliseconds since the epoch (default: Date.now). */
  now?: () => number;
}

export interface RunningAuthService {
  host: string;
  port: number;
  /** The metrics listener's port (METRICS_PORT 0 picks a free one), or null when it is off. */
  metricsPort: number | null;
  /** True once migrations have succeeded; until then sign-in answers 503. */
  isStoreReady(): boolean;
  /** Resolves when the store is ready (immediately if it already is). */
  storeReady: Promise<void>;
  logger: Logger;
  /** Stops accepting connections, lets in-flight requests finish (5 s at most), closes the pool. */
  close(): Promise<void>;
}

/** Waits before the next migration attempt while the database is down: 0.5 s doubling to 30 s. */
const MIGRATION_RETRY_FIRST_MS = 500;
const MIGRATION_RETRY_MAX_MS = 30_000;
const SHUTDOWN_GRACE_MS = 5_000;
/** The auth service's database pool size (pg's default), also reported as gateway_auth_db_pool_connections{state="max"}. */
const POOL_MAX = 10;

function loadConfigOrThrow(env: Env): AuthConfig {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    throw new AppError('ERR_CONFIG', 500, `Invalid configuration:\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}`, {
      cause: loaded.errors,
    });
  }
  return loaded.config;
}

/** The logger, plus one warning for each unsafe switch that is on. */
function createServiceLogger(config: AuthConfig, opts: StartOptions): Logger {
  const logger = createLogger({ level: config.logLevel, destination: opts.logStream });
  for (const warning of config.warnings) logger.warn({ event: 'config_warning' }, warning);
  if (!config.session.cookieSecure) {
    logger.warn({ event: 'insecure_cookies' }, 'AUTH_COOKIE_SECURE=false: session cookies will also be sent over plain HTTP');
  }
  if (config.session.ipBinding === 'off') {
    logger.warn({ event: 'ip_binding_off' }, 'SESSION_IP_BINDING=off: a stolen session cookie works from any address');
  }
  if (config.allowInsecureHttpIdp) {
    logger.warn({ event: 'insecure_idp_allowed' }, 'ALLOW_INSECURE_HTTP_IDP=true: identity providers may be reached over plain HTTP (tests only)');
  }
  return logger;
}

/**
 * The password sources in AUTH_CHAIN order (default local, tableau, custom); the first that knows the
 * user decides. With local first, a local account's wrong password never reaches the others.
 */
async function createPasswordSources(
  config: AuthConfig,
  deps: { usersRepo: ReturnType<typeof createUsersRepo>; hasher: ReturnType<typeof createPasswordHasher>; logger: Logger; now?: () => number; metrics: AuthMetrics },
): Promise<PasswordAuthenticator[]> {
  const { usersRepo, hasher, logger } = deps;
  const sources: Partial<Record<PasswordSource, PasswordAuthenticator>> = {};
  if (config.chain.includes('local')) sources.local = createLocalAuthenticator({ usersRepo, hasher, logger });
  if (config.tableau !== null) {
    const { url, site, apiVersion, timeoutMs, caPem } = config.tableau;
    // The Tableau session is kept, sealed into the session token, for the /api/ pass-through.
    const sealCredentials = (creds: Parameters<typeof sealTableauCredentials>[0]) => sealTableauCredentials(creds, config.jwt.secret);
    const tableau = createTableauAuthenticator({ url, site, apiVersion: apiVersion ?? undefined, timeoutMs, logger, sealCredentials, now: deps.now, fetch: deps.metrics.timedFetch('tableau', tableauFetch(config.tableau)) });
    sources.tableau = tableau;
    logger.info({ event: 'source_enabled', src: 'tableau', url, site: site === '' ? '(default)' : site, ca: caPem === null ? 'system' : 'TABLEAU_CA_FILE' }, 'Tableau sign-in enabled');
    // Not awaited: a Tableau that is down must not stop start-up; a version it refuses is logged
    // now (tableau_setup_required, with what to set) instead of at the first user's sign-in.
    void tableau.checkServer();
  }
  if (config.customModule !== null) {
    sources.custom = await loadCustomAuthenticator(config.customModule);
    logger.info({ event: 'source_enabled', src: sources.custom.id, module: config.customModule }, 'custom sign-in module loaded');
  }
  const authenticators = config.chain.map((src) => sources[src]!);
  logger.info({ event: 'auth_chain', chain: authenticators.map((a) => a.id) }, 'password sources in order');
  return authenticators;
}

function createOidcSignIn(config: AuthConfig, logger: Logger, now: () => number, groupSelection: GroupSelectionSource, metrics: AuthMetrics): ReturnType<typeof createOidcService> | null {
  if (config.oidc === null) return null;
  const oidc = createOidcService({
    config: config.oidc,
    fetch: metrics.timedFetch(config.oidc.flavour),
    allowInsecureHttp: config.allowInsecureHttpIdp,
    session: { secret: config.jwt.secret, ttlSeconds: config.session.ttlSeconds, groupSelection },
    logger,
    now,
  });
  logger.info({ event: 'source_enabled', src: config.oidc.flavour, issuer: config.oidc.issuer, redirect_uri: config.oidc.redirectUri }, 'OIDC sign-in enabled');
  return oidc;
}

interface Migrations {
  isReady(): boolean;
  ready: Promise<void>;
  /** Stops retrying. */
  stop(): void;
}

/**
 * Runs the migrations now and, while the store cannot be reached, again with backoff (0.5 s doubling
 * to 30 s). Each failure is logged with the store's address and the cause, never its password.
 */
async function startMigrations(pool: ReturnType<typeof createPool>, databaseUrl: string, logger: Logger): Promise<Migrations> {
  let ready = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let markReady: () => void = () => undefined;
  const readyPromise = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  async function migrate(attempt: number): Promise<void> {
    try {
      const applied = await runMigrations(pool);
      ready = true;
      markReady();
      logger.info({ event: 'store_ready', applied }, 'user store ready');
    } catch (err) {
      if (stopped) return;
      const delay = Math.min(MIGRATION_RETRY_FIRST_MS * 2 ** attempt, MIGRATION_RETRY_MAX_MS);
      const unavailable = isConnectionError(err) || (isAppError(err) && err.code === 'ERR_STORE_UNAVAILABLE');
      const detail = unavailable ? describeStoreConnectionError(databaseUrl, err) : 'migrations failed';
      logger[unavailable ? 'warn' : 'error'](
        { event: 'store_unavailable', store: describeStoreTarget(databaseUrl), attempt: attempt + 1, retry_in_ms: delay, err: errorSummary(err) },
        `${detail}; sign-in answers 503 until the migrations succeed`,
      );
      retryTimer = setTimeout(() => void migrate(attempt + 1), delay);
      retryTimer.unref();
    }
  }
  await migrate(0);
  return {
    isReady: () => ready,
    ready: readyPromise,
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
    },
  };
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * The internal metrics listener: GET /metrics in Prometheus text format, 404 for anything else. A
 * plain node:http server, apart from the app, so nothing of it is reachable through nginx.
 */
function createMetricsServer(metrics: AuthMetrics): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at GET /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  });
}

/** Stops accepting, lets in-flight requests finish (SHUTDOWN_GRACE_MS at most), then closes the pool. */
async function shutDown(server: Server, pool: ReturnType<typeof createPool>, migrations: Migrations, logger: Logger, metricsServer: Server | null): Promise<void> {
  migrations.stop();
  if (metricsServer !== null) {
    metricsServer.close();
    metricsServer.closeAllConnections();
  }
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  force.unref();
  await stopped;
  clearTimeout(force);
  await pool.end();
  logger.info({ event: 'stopped' }, 'auth service stopped');
}

/**
 * Loads the config from `env`, connects, migrates, writes the gate config (GATE_CONFIG_FILE) and
 * listens on AUTH_HOST:AUTH_PORT (port 0 picks a free one; see `port`).
 *
 * Throws AppError('ERR_CONFIG') listing every configuration problem (its message has one per line,
 * `cause` is the string array), or the listen/write error. A database that is down does NOT make
 * it throw: it listens anyway, answers sign-ins with 503 and retries the migrations with backoff.
 */
export async function startAuthService(env: Env, opts: StartOptions = {}): Promise<RunningAuthService> {
  const config = loadConfigOrThrow(env);
  const logger = createServiceLogger(config, opts);
  const now = opts.now ?? Date.now;

  // A sign-in storm gets at most LOGIN_HASH_CONCURRENCY hashes at once, on threads at CPU priority
  // LOGIN_HASH_NICE (below nginx); beyond LOGIN_HASH_QUEUE waiting, 503.
  const hashingThreads = startHashingThreads({ threads: config.loginHashing.concurrency, nice: config.loginHashing.nice });
  const hasher = limitPasswordHashing(
    createPasswordHasher(config.passwordPolicy, { pbkdf2: hashingThreads.pbkdf2 }),
    createHashingLimiter(config.loginHashing),
  );
  // The first dummy verification also creates the dummy hash; pay for it now, not on a login.
  await hasher.verifyDummy('warm-up');

  const metrics = createMetrics({ processMetrics: true });
  const pool = createPool(config.databaseUrl, { logger, applicationName: 'identity-gateway-auth', max: POOL_MAX, onError: (err) => metrics.dbError(err) });
  metrics.watchPool(pool, POOL_MAX);
  const usersRepo = createUsersRepo(pool);
  let authenticators: PasswordAuthenticator[];
  try {
    authenticators = await createPasswordSources(config, { usersRepo, hasher, logger, now: opts.now, metrics });
  } catch (err) {
    await pool.end().catch(() => undefined);
    await hashingThreads.close();
    throw err;
  }
  const groupSelection = createGroupSelectionSource(config);
  const oidc = createOidcSignIn(config, logger, now, groupSelection, metrics);

  const migrations = await startMigrations(pool, config.databaseUrl, logger);
  const storage = { sessions: createSessionsRepo(pool), audit: createAuditRepo(pool), handoffs: createHandoffsRepo(pool) };
  const retention = startRetentionJob({ ...storage, retentionDays: config.auditRetentionDays, logger, ready: migrations.ready });
  let metricsServer: Server | null = null;
  try {
    await writeGateFiles(config, logger, now());
    const app = createApp({
      config,
      usersRepo,
      hasher,
      logger,
      now,
      authenticators,
      oidc,
      storage,
      groupSelection,
      storeReady: migrations.isReady,
      pingStore: async () => {
        await pool.query('SELECT 1');
      },
      metrics,
    });
    const server = createServer(app);
    server.requestTimeout = 30_000;
    const port = await listen(server, config.port, config.host);
    logger.info({ event: 'listening', host: config.host, port }, `auth service listening on ${config.host}:${port}`);
    let metricsPort: number | null = null;
    if (config.metrics !== null) {
      metricsServer = createMetricsServer(metrics);
      metricsPort = await listen(metricsServer, config.metrics.port, config.metrics.host);
      logger.info({ event: 'metrics_listening', host: config.metrics.host, port: metricsPort }, `metrics at http://${config.metrics.host}:${metricsPort}/metrics`);
    }

    let closed: Promise<void> | undefined;
    return {
      host: config.host,
      port,
      metricsPort,
      isStoreReady: migrations.isReady,
      storeReady: migrations.ready,
      logger,
      close() {
        retention.stop();
        closed ??= shutDown(server, pool, migrations, logger, metricsServer).finally(() => hashingThreads.close());
        return closed;
      },
    };
  } catch (err) {
    metricsServer?.close();
    retention.stop();
    migrations.stop();
    await pool.end().catch(() => undefined);
    await hashingThreads.close();
    throw err;
  }
}

async function main(): Promise<void> {
  let service: RunningAuthService;
  try {
    service = await startAuthService(process.env);
  } catch (err) {
    if (isAppError(err) && err.code === 'ERR_CONFIG') {
      process.stderr.write(`${err.safeMessage}\n`);
    } else {
      process.stderr.write(`auth service failed to start: ${errorSummary(err).message ?? 'unknown error'}\n`);
    }
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now".
      process.exit(1);
    }
    stopping = true;
    service.logger.info({ event: 'shutdown', signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) void main();
