import { Router } from 'express';

export interface HealthRouteDeps {
  /** False until the store is migrated. */
  storeReady: () => boolean;
  /** Resolves when the store answers a trivial query. Absent: the database is not checked. */
  pingStore?: () => Promise<void>;
  /** How long /readyz waits for the database (default READY_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** The database must answer /readyz's query within this; a slower one counts as not ready. */
export const READY_TIMEOUT_MS = 1000;

type Check = 'ok' | 'migrations-pending' | 'unavailable' | 'timeout';

async function checkDatabase(deps: HealthRouteDeps): Promise<Check> {
  if (!deps.storeReady()) return 'migrations-pending';
  if (!deps.pingStore) return 'ok';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Check>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), deps.timeoutMs ?? READY_TIMEOUT_MS);
  });
  const ping = deps.pingStore().then(
    (): Check => 'ok',
    (): Check => 'unavailable',
  );
  try {
    return await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /healthz, liveness: 200 while the process serves HTTP. It touches nothing else, so a database
 * outage never gets the service restarted (sign-in recovers by itself once the database is back).
 *
 * GET /readyz, readiness: 200 when the service can sign users in: the config loaded (it has, or the
 * process would not be serving), the migrations are applied and the database answers a query within
 * READY_TIMEOUT_MS; otherwise 503. Both answer JSON and never say more than these words.
 */
export function createHealthRouter(deps: HealthRouteDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.status(200).json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const database = await checkDatabase(deps);
    const ready = database === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', checks: { config: 'ok', database } });
  });
  return router;
}
