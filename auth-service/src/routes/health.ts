import { Router } from 'express';

export interface HealthRouteDeps {
  /** False until the store is migrated. */
  storeReady: () => boolean;
  /** Resolves when the store answers a trivial query. */
  pingStore?: () => Promise<void>;
}

/**
 * GET /healthz for container healthchecks: always 200 while the process serves HTTP (a down
 * database is reported, not fatal, because sign-in recovers by itself once it is back).
 */
export function createHealthRouter(deps: HealthRouteDeps): Router {
  const router = Router();
  router.get('/healthz', async (_req, res) => {
    let ready = deps.storeReady();
    if (ready && deps.pingStore) {
      ready = await deps.pingStore().then(
        () => true,
        () => false,
      );
    }
    res.status(200).json({ status: 'ok', store: ready ? 'ready' : 'unavailable' });
  });
  return router;
}
