import type { Request, Response } from 'express';
import { readCookie } from '../../../njs/src/core/cookie.js';
import { liveSecrets, maxSessionAgeSeconds, type AuthConfig } from '../config.js';
import { normaliseClientIp } from '../security/client-ip.js';
import { verifySessionCookie } from '../services/tableau-token.js';

/** Per-request values the middleware in app.ts puts on `res.locals`. */
export interface RequestLocals {
  requestId: string;
  /** The validated return path of a login form, so error pages can offer "start again". */
  returnPath?: string;
}

export function localsOf(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

/** `/login` or `/login?rd=…` for a validated return path. */
export function loginHref(returnPath: string | undefined): string {
  return returnPath === undefined || returnPath === '/' ? '/login' : `/login?rd=${encodeURIComponent(returnPath)}`;
}

/**
 * The request's session claims, verified as the gate verifies them (verifySessionCookie: current or
 * previous key before its retirement time, exp/nbf with the leeway, iat within the maximum session
 * age, IP binding), or null when there is no valid session.
 */
export function verifiedSessionOf(req: Request, config: AuthConfig, nowMs: number): Record<string, unknown> | null {
  const cookie = readCookie(req.headers.cookie, config.session.cookieName);
  const now = Math.floor(nowMs / 1000);
  return verifySessionCookie(cookie.status === 'ok' ? cookie.value : undefined, {
    // Previous keys only until their retirement time, and sessions only up to the maximum age, as at the gate.
    secrets: [config.jwt.secret, ...liveSecrets(config.jwt.previousKeys, now)],
    leewaySeconds: config.session.leewaySeconds,
    ipBinding: config.session.ipBinding,
    clientIp: normaliseClientIp(req.ip),
    now,
    maxSessionSeconds: maxSessionAgeSeconds(config),
  });
}
