/**
 * Single sign-on for application hosts that share no parent domain with the sign-in host (issue 12),
 * the pattern Pomerium and Authelia use: the sign-in host (PUBLIC_BASE_URL) sends the signed-in
 * browser to `https://app.example/login/handoff?code=…&rd=/path`; the app host redeems the code once
 * and sets its own cookie for the SAME server-side session, so revoking the session ends it there
 * too. The code is 32 random bytes, stored only as its SHA-256, valid SSO_HANDOFF_TTL_SECONDS, once,
 * on the origin it was issued for and from the client address it was issued to. It is never a
 * token: it grants nothing by itself after those seconds or that one use.
 *
 * Logout then clears the cookie on every host the session was handed to, by a chain of redirects
 * (`/logout/handoff?chain=…`) whose list of hosts is signed and lives two minutes.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { splitReturnTarget } from '../../../njs/src/core/return-url.js';
import type { AuthConfig } from '../config.js';
import { hostOf, isUnderDomain } from '../security/sso-settings.js';
import type { AuthEventInput } from '../storage/audit-repo.js';
import type { HandoffsRepo } from '../storage/handoffs-repo.js';
import type { SessionsRepo } from '../storage/sessions-repo.js';
import { signSessionClaims } from './session-token.js';

/** Path of the redemption route on every app host (nginx's `location ^~ /login/` reaches it). */
export const HANDOFF_PATH = '/login/handoff';
/** Path of the logout chain's hop on every host (nginx's `location ^~ /logout/`). */
export const LOGOUT_HOP_PATH = '/logout/handoff';
/** How long a logout chain link can be followed. */
export const LOGOUT_CHAIN_TTL_SECONDS = 120;

const CODE = /^[A-Za-z0-9_-]{43}$/;

/** Why a redemption was refused: kebab-case, in the log and the `handoff_refused` audit row. */
export type HandoffRefusal =
  | 'handoff-malformed'
  | 'handoff-origin-unlisted'
  | 'handoff-unknown'
  | 'handoff-replayed'
  | 'handoff-expired'
  | 'handoff-origin-mismatch'
  | 'handoff-ip-mismatch'
  | 'session-ended';

export type RedeemResult = { ok: true; token: string; maxAgeSeconds: number; username: string } | { ok: false; reason: HandoffRefusal };

export interface SsoHandoffDeps {
  config: Pick<AuthConfig, 'sso' | 'publicBaseUrl' | 'jwt' | 'session'>;
  handoffs: HandoffsRepo;
  sessions: Pick<SessionsRepo, 'find'>;
  /** Best-effort audit write (ServerSessions.recordEvent): a refusal is answered even when the store is slow. */
  recordEvent: (event: AuthEventInput) => Promise<void>;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
}

export interface SsoHandoff {
  /**
   * Where to send a signed-in browser whose validated return target (safeReturnTarget) is `target`,
   * from a request addressed to `hereOrigin` (`host` its Host header): the path itself when the
   * target is on this origin; the absolute URL when both hosts lie under SESSION_COOKIE_DOMAIN (the
   * cookie already reaches it); else a fresh hand-off URL on the target origin. Throws
   * ERR_STORE_UNAVAILABLE when the code cannot be stored.
   */
  locationFor(target: string, claims: SessionClaims | Record<string, unknown>, ctx: { hereOrigin: string | undefined; host: string | undefined; clientIp: string; requestId: string }): Promise<string>;
  /** Redeems `code` on `hereOrigin` for `clientIp` (checks in the order of HandoffRefusal). */
  redeem(input: { code: unknown; hereOrigin: string | undefined; clientIp: string; requestId: string }): Promise<RedeemResult>;
  /** The origins, other than `hereOrigin`, whose cookie of session `sid` logout must clear (the sign-in host's included). Never throws. */
  logoutHops(sid: string, hereOrigin: string | undefined, requestId: string): Promise<string[]>;
  /** The first URL of a logout chain through `hops` ending at the absolute URL `done`. */
  startLogoutChain(hops: string[], done: string): string;
  /** The next URL of the chain `value` at `hereOrigin`, or null when it is forged, expired or addressed elsewhere. */
  followLogoutChain(value: unknown, hereOrigin: string | undefined): string | null;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('base64url');
}

interface ChainPayload {
  /** The hops still to visit, the current one first. */
  h: string[];
  /** The absolute URL after the last hop. */
  d: string;
  /** Expiry, seconds since the epoch. */
  e: number;
}

export function createSsoHandoff(deps: SsoHandoffDeps): SsoHandoff {
  const { config, handoffs, logger } = deps;
  const publicOrigin = config.publicBaseUrl;
  const listed = (origin: string | undefined): origin is string => origin !== undefined && config.sso.appOrigins.includes(origin);

  function chainMac(payload: string, secret: string): string {
    return crypto.createHmac('sha256', secret).update('gw-logout-chain\u0000' + payload, 'utf8').digest('base64url');
  }

  function signChain(p: ChainPayload): string {
    const payload = Buffer.from(JSON.stringify(p), 'utf8').toString('base64url');
    return `${payload}.${chainMac(payload, config.jwt.secret)}`;
  }

  function hopUrl(p: ChainPayload): string {
    return `${p.h[0]}${LOGOUT_HOP_PATH}?chain=${signChain(p)}`;
  }

  async function refuse(reason: HandoffRefusal, fields: { sid?: string; username?: string; clientIp: string; requestId: string; origin?: string }): Promise<RedeemResult> {
    logger.warn({ event: 'handoff_refused', reason, sid: fields.sid, user: fields.username, origin: fields.origin, request_id: fields.requestId });
    await deps.recordEvent({ event: 'handoff_refused', reason, sid: fields.sid ?? null, username: fields.username ?? null, clientIp: fields.clientIp, requestId: fields.requestId });
    return { ok: false, reason };
  }

  return {
    async locationFor(target, claims, ctx) {
      const { origin, path } = splitReturnTarget(target);
      if (origin === null || origin === ctx.hereOrigin) return path;
      const domain = config.sso.cookieDomain;
      if (domain !== null && ctx.host !== undefined && isUnderDomain(hostOf(ctx.host), domain) && isUnderDomain(hostOf(new URL(origin).host), domain)) return target;
      const code = crypto.randomBytes(32).toString('base64url');
      const sid = String(claims.sid);
      const username = typeof claims.username === 'string' ? claims.username : null;
      await handoffs.issue({
        codeHash: sha256(code),
        sid,
        targetOrigin: origin,
        clientIp: ctx.clientIp,
        claims: { ...claims },
        nowMs: deps.now(),
        ttlSeconds: config.sso.handoffTtlSeconds,
        event: { event: 'handoff_issued', username, sid, clientIp: ctx.clientIp, requestId: ctx.requestId, reason: origin },
      });
      logger.info({ event: 'handoff_issued', user: username, sid, origin, request_id: ctx.requestId });
      return `${origin}${HANDOFF_PATH}?code=${code}&rd=${encodeURIComponent(path)}`;
    },

    async redeem(input) {
      const base = { clientIp: input.clientIp, requestId: input.requestId, origin: input.hereOrigin };
      if (typeof input.code !== 'string' || !CODE.test(input.code)) return refuse('handoff-malformed', base);
      if (!listed(input.hereOrigin)) return refuse('handoff-origin-unlisted', base);
      const codeHash = sha256(input.code);
      const nowMs = deps.now();
      const row = await handoffs.take(codeHash, nowMs);
      if (row === null) return refuse('handoff-unknown', base);
      if (row === 'used') return refuse('handoff-replayed', base);
      const username = typeof row.claims.username === 'string' ? row.claims.username : undefined;
      const known = { ...base, sid: row.sid, username };
      if (row.expiresAt.getTime() <= nowMs) return refuse('handoff-expired', known);
      if (row.targetOrigin !== input.hereOrigin) return refuse('handoff-origin-mismatch', known);
      if (row.clientIp !== input.clientIp) return refuse('handoff-ip-mismatch', known);
      const session = await deps.sessions.find(row.sid);
      if (session === null || session.revokedAt !== null || session.expiresAt.getTime() <= nowMs || session.idleExpiresAt.getTime() <= nowMs) {
        return refuse('session-ended', known);
      }
      // The same claims (same sid and iat, so the gate's maximum age still counts from sign-in),
      // a fresh exp, never past the session's absolute end: as a renewal signs them.
      const nowSeconds = Math.floor(nowMs / 1000);
      const endSeconds = Math.floor(session.expiresAt.getTime() / 1000);
      const claims = { ...row.claims, exp: Math.min(nowSeconds + config.session.ttlSeconds, endSeconds) } as SessionClaims;
      const token = signSessionClaims(claims, config.jwt.secret);
      await handoffs.confirm(codeHash, nowMs, { event: 'handoff_redeemed', username: username ?? null, sid: row.sid, clientIp: input.clientIp, requestId: input.requestId, reason: row.targetOrigin });
      logger.info({ event: 'handoff_redeemed', user: username, sid: row.sid, origin: row.targetOrigin, request_id: input.requestId });
      return { ok: true, token, maxAgeSeconds: Math.max(1, endSeconds - nowSeconds), username: username ?? '' };
    },

    async logoutHops(sid, hereOrigin, requestId) {
      let origins: string[] = [];
      try {
        origins = await handoffs.redeemedOrigins(sid);
      } catch (err) {
        // The session is already revoked server-side; only the other hosts' cookies stay until their token expires.
        logger.error({ event: 'auth_error', reason: 'handoff-origins-unavailable', sid, request_id: requestId, err: (err as Error).message });
      }
      const hops = origins.filter((o) => o !== hereOrigin && listed(o));
      if (publicOrigin !== null && hereOrigin !== publicOrigin && listed(hereOrigin)) hops.push(publicOrigin);
      return hops;
    },

    startLogoutChain(hops, done) {
      return hopUrl({ h: hops, d: done, e: Math.floor(deps.now() / 1000) + LOGOUT_CHAIN_TTL_SECONDS });
    },

    followLogoutChain(value, hereOrigin) {
      if (typeof value !== 'string' || value.length > 4096) return null;
      const dot = value.indexOf('.');
      if (dot < 0) return null;
      const payload = value.slice(0, dot);
      const mac = value.slice(dot + 1);
      const secrets = [config.jwt.secret, ...config.jwt.previousSecrets];
      // Compared as hashes: constant time whatever the lengths.
      if (!secrets.some((s) => sha256(chainMac(payload, s)) === sha256(mac))) return null;
      let p: ChainPayload;
      try {
        p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ChainPayload;
      } catch {
        return null;
      }
      if (!Array.isArray(p.h) || p.h.length === 0 || typeof p.d !== 'string' || typeof p.e !== 'number') return null;
      if (p.e < Math.floor(deps.now() / 1000) || p.h[0] !== hereOrigin) return null;
      const rest = p.h.slice(1);
      return rest.length === 0 ? p.d : hopUrl({ h: rest, d: p.d, e: p.e });
    },
  };
}
