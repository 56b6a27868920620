/**
 * The auth service's Prometheus metrics, on a registry of their own (never prom-client's global one,
 * so several services in one process, as in the tests, keep separate counts). main.ts serves them on
 * the internal metrics listener (METRICS_HOST:METRICS_PORT), never on the port nginx proxies.
 *
 * Labels stay bounded: sources are the configured source ids, results and reasons are closed sets,
 * and nothing carries a username, an address, a path or a session id.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isConnectionError } from './storage/db.js';

export type LoginResult = 'success' | 'failure' | 'rate_limited' | 'error';

/** Identity providers whose HTTP calls are timed. */
export type IdpName = 'oidc' | 'azure' | 'tableau';

/** The connection counts of a pg pool (pg.Pool has these properties). */
export interface PoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export interface AuthMetrics {
  readonly registry: Registry;
  /** One finished sign-in: `source` is the source id (local, tableau, a custom id, oidc, azure) or `password` before one decided. */
  login(source: string, result: LoginResult, seconds: number): void;
  /** One refused attempt, by the limit that refused it (ip, user, user-ip). */
  rateLimitHit(scope: string): void;
  /** One renewal answered: `renewed`, or the refusal's reason (a closed set, see services/renewal.ts). */
  renewal(result: string): void;
  /** One failed database call: `unavailable` (cannot reach it, timeout) or `query` (the query failed). */
  dbError(err: unknown): void;
  /** One answer of GET /auth/tableau/embed-token: `issued`, or the refusal's reason (a closed set, routes/tableau-embed.ts). */
  tableauEmbedToken(result: string): void;
  /** Reports the pool's connection counts at each scrape. */
  watchPool(pool: PoolCounts, max: number): void;
  /** A fetch that times each call to `idp` and counts its failures (network, timeout, HTTP 5xx). */
  timedFetch(idp: IdpName, inner?: typeof fetch): typeof fetch;
}

/** Sign-in takes a password hash (tens of ms) and possibly an identity provider (up to seconds). */
const LOGIN_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const IDP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `http_5xx`, `timeout`, `network`, or null for an answer below 500. */
function idpFailure(status: number | null, err: unknown): string | null {
  if (status !== null) return status >= 500 ? 'http_5xx' : null;
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  return name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network';
}

/**
 * Creates the metrics. `processMetrics` adds prom-client's default process metrics (CPU, memory,
 * event loop lag, GC), prefixed `gateway_auth_`; main.ts turns them on, tests leave them off.
 */
export function createMetrics(opts: { processMetrics?: boolean } = {}): AuthMetrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'gateway_auth_' });

  const logins = new Counter({
    name: 'gateway_auth_logins_total',
    help: 'Sign-ins finished, by source and result (success, failure, rate_limited, error).',
    labelNames: ['source', 'result'] as const,
    registers: [registry],
  });
  const loginSeconds = new Histogram({
    name: 'gateway_auth_login_duration_seconds',
    help: 'Time to answer a sign-in (password check or OIDC callback), by source and result.',
    labelNames: ['source', 'result'] as const,
    buckets: LOGIN_BUCKETS,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'gateway_auth_rate_limit_hits_total',
    help: 'Sign-in attempts refused by a rate limit, by limit (ip, user, user-ip).',
    labelNames: ['scope'] as const,
    registers: [registry],
  });
  const renewals = new Counter({
    name: 'gateway_auth_renewals_total',
    help: 'Session token renewals answered, by result (renewed, or the reason for refusing).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const embedTokens = new Counter({
    name: 'gateway_auth_tableau_embed_tokens_total',
    help: 'Tableau connected-app tokens asked for, by result (issued, or the reason for refusing).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const dbErrors = new Counter({
    name: 'gateway_auth_db_errors_total',
    help: 'Failed database calls: unavailable (connection, timeout) or query.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const idpSeconds = new Histogram({
    name: 'gateway_auth_idp_request_duration_seconds',
    help: 'HTTP calls to identity providers (OIDC/Azure endpoints, Microsoft Graph, Tableau), by provider and outcome.',
    labelNames: ['idp', 'outcome'] as const,
    buckets: IDP_BUCKETS,
    registers: [registry],
  });
  const idpErrors = new Counter({
    name: 'gateway_auth_idp_errors_total',
    help: 'Failed calls to identity providers: timeout, network or http_5xx.',
    labelNames: ['idp', 'kind'] as const,
    registers: [registry],
  });
  const pools: Array<{ pool: PoolCounts; max: number }> = [];
  new Gauge({
    name: 'gateway_auth_db_pool_connections',
    help: 'Database pool connections by state: total (open), idle, waiting (requests queued for one), max (the pool size).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      let total = 0;
      let idle = 0;
      let waiting = 0;
      let max = 0;
      for (const p of pools) {
        total += p.pool.totalCount;
        idle += p.pool.idleCount;
        waiting += p.pool.waitingCount;
        max += p.max;
      }
      this.set({ state: 'total' }, total);
      this.set({ state: 'idle' }, idle);
      this.set({ state: 'waiting' }, waiting);
      this.set({ state: 'max' }, max);
    },
  });

  return {
    registry,
    login(source, result, seconds) {
      logins.inc({ source, result });
      loginSeconds.observe({ source, result }, seconds);
    },
    rateLimitHit(scope) {
      rateLimited.inc({ scope });
    },
    renewal(result) {
      renewals.inc({ result });
    },
    tableauEmbedToken(result) {
      embedTokens.inc({ result });
    },
    dbError(err) {
      dbErrors.inc({ kind: isConnectionError(err) ? 'unavailable' : 'query' });
    },
    watchPool(pool, max) {
      pools.push({ pool, max });
    },
    timedFetch(idp, inner) {
      // The global fetch is looked up per call, as the code this wraps did.
      const call: typeof fetch = inner ?? ((input, init) => globalThis.fetch(input, init));
      return async (input, init) => {
        const end = idpSeconds.startTimer({ idp });
        let status: number | null = null;
        let error: unknown;
        try {
          const res = await call(input, init);
          status = res.status;
          return res;
        } catch (err) {
          error = err;
          throw err;
        } finally {
          const failure = idpFailure(status, error);
          end({ outcome: failure ?? 'ok' });
          if (failure !== null) idpErrors.inc({ idp, kind: failure });
        }
      };
    },
  };
}

/** Seconds elapsed since `started` (a process.hrtime.bigint() value). */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
