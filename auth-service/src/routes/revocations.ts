/**
 * GET /auth/revocations?since=<ms>: the sessions revoked recently, for nginx's revocation poller on
 * njs >= 0.8 (njs/src/revocations.ts, once a second; the body is RevocationsReply in
 * njs/src/core/revocations.ts). nginx calls the service's own port; it does not publish this path.
 *
 * No credential is asked: the answer holds only session ids of sessions that are already over, and
 * sids are no secret (the gate forwards them to the upstream apps as X-Payload-sid); a token needs
 * the signing key. Keep the service's port off the public network all the same (docker-compose does).
 */
import { Router } from 'express';
import type { AuthConfig } from '../config.js';
import type { RevocationsReply } from '../../../njs/src/core/revocations.js';
import { isAppError } from '../errors.js';
import type { SessionsRepo } from '../storage/sessions-repo.js';

export const REVOCATIONS_PATH = '/auth/revocations';
/** Sids per answer at most; the poller asks again at once from `until` when there are more. */
export const REVOCATIONS_PAGE = 2000;

export interface RevocationsRouteDeps {
  config: Pick<AuthConfig, 'session'>;
  sessions: Pick<SessionsRepo, 'revokedSince'>;
  storeReady: () => boolean;
}

/**
 * 200 RevocationsReply: the sessions revoked at or after `since` (milliseconds since the epoch,
 * optional) and within the last SESSION_TOKEN_TTL_SECONDS + SESSION_LEEWAY_SECONDS (older ones
 * have no valid token left), each with the milliseconds until its last token expires. 400 JSON for
 * a `since` that is not a whole number; 503 JSON when the store cannot answer.
 */
export function createRevocationsRouter(deps: RevocationsRouteDeps): Router {
  const router = Router();
  router.get(REVOCATIONS_PATH, async (req, res, next) => {
    const since = req.query.since;
    if (since !== undefined && (typeof since !== 'string' || !/^[0-9]{1,15}$/.test(since))) {
      res.status(400).json({ error: 'bad-request', reason: 'since must be milliseconds since the epoch' });
      return;
    }
    if (!deps.storeReady()) {
      res.status(503).json({ error: 'store-unavailable' });
      return;
    }
    try {
      const found = await deps.sessions.revokedSince({
        sinceMs: since === undefined ? null : Number(since),
        windowSeconds: deps.config.session.ttlSeconds + deps.config.session.leewaySeconds,
        limit: REVOCATIONS_PAGE,
      });
      const more = found.sessions.length >= REVOCATIONS_PAGE;
      // A full page continues at its last revocation time, but always moves on by at least 1 ms:
      // a page whose sessions were all revoked in that one millisecond (one user with thousands of
      // sessions) would otherwise come back forever, hiding every later revocation. The rest of that
      // millisecond's sessions then fall back to the token bound.
      const last = more ? found.sessions[found.sessions.length - 1]!.revokedAtMs : 0;
      const sinceMs = since === undefined ? 0 : Number(since);
      const reply: RevocationsReply = {
        until: more ? (last > sinceMs ? last : sinceMs + 1) : found.nowMs,
        more,
        revoked: found.sessions.map((s) => ({ sid: s.sid, ttl: s.ttlMs })),
      };
      res.status(200).json(reply);
    } catch (err) {
      if (isAppError(err) && err.code === 'ERR_STORE_UNAVAILABLE') {
        res.status(503).json({ error: 'store-unavailable' });
        return;
      }
      next(err);
    }
  });
  return router;
}
