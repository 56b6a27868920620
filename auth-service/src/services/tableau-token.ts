/**
 * The Tableau credentials token a Tableau sign-in keeps for the whole session, so that the gate can
 * call Tableau's REST API on the user's behalf (nginx `/api/` pass-through) and logout can end it.
 *
 * It travels inside the session JWT as the claim `tta`, sealed with AES-256-GCM: the cookie is
 * HttpOnly, but the JWT payload is only base64url, and the Tableau token must not be readable by
 * anyone holding the cookie value (logs, browser extensions, a copied HAR file). The AES key is
 * derived from the JWT secret with HKDF-SHA256 (info 'gw-tableau-token-v1'), so it rotates with
 * JWT_SECRET / JWT_PREVIOUS_SECRETS and needs no variable of its own. The gate never derives keys:
 * the gate config carries the raw AES keys, indexed like the HMAC keys by JWT header segment.
 *
 * Sealed format: base64url(iv (12 random bytes) | ciphertext | GCM tag (16 bytes)) of the JSON
 * `{"t":token,"s":siteId,"u":userId,"v":apiVersion,"x":expiresAtSeconds}`.
 */
import type { Logger } from 'pino';
import { readCookie } from '../../../njs/src/core/cookie.js';
import type { AuthConfig } from '../config.js';
import { deriveSealingKey, openText, sealText } from './sealed-text.js';
import { headerSegmentFor, verifySignedClaims } from './session-token.js';

/** Name of the session claim that holds the sealed credentials (shared contract). */
export { TABLEAU_TOKEN_CLAIM };

import { TABLEAU_TOKEN_CLAIM, type IpBinding } from '../../../njs/src/core/session-contract.js';
import { sameSubnet } from '../../../njs/src/core/ip-binding.js';

const HKDF_INFO = 'gw-tableau-token-v1';

/** What a Tableau sign-in returned, as the session keeps it. */
export interface TableauCredentials {
  /** Tableau's X-Tableau-Auth credentials token. */
  token: string;
  siteId: string;
  userId: string;
  /** REST API version the token was issued through, e.g. '3.19'. */
  apiVersion: string;
  /** Seconds since the epoch after which Tableau no longer accepts the token (an estimate). */
  expiresAt: number;
}

/** The 32-byte AES-256-GCM key for tokens sealed under `secret` (HKDF-SHA256, empty salt). */
export function deriveTableauKey(secret: string): Buffer {
  return deriveSealingKey(secret, HKDF_INFO);
}

/** base64url raw AES keys by JWT header segment, for the gate config (active and previous secrets). */
export function tableauGateKeys(secrets: string[]): { [headerSegment: string]: string } {
  const keys: { [headerSegment: string]: string } = {};
  for (const secret of secrets) keys[headerSegmentFor(secret)] = deriveTableauKey(secret).toString('base64url');
  return keys;
}

/** Seals `creds` under the active secret. Every call uses a fresh random IV. */
export function sealTableauCredentials(creds: TableauCredentials, secret: string): string {
  return sealText(JSON.stringify({ t: creds.token, s: creds.siteId, u: creds.userId, v: creds.apiVersion, x: creds.expiresAt }), deriveTableauKey(secret));
}

/**
 * Opens a sealed value with whichever of `secrets` sealed it. Returns null when no key opens it or
 * the content is not well-formed credentials. Not checked: expiry (callers compare `expiresAt`).
 */
export function openTableauCredentials(sealed: unknown, secrets: string[]): TableauCredentials | null {
  const plain = openText(sealed, secrets.map(deriveTableauKey));
  if (plain === null) return null;
  try {
    const c = JSON.parse(plain) as Record<string, unknown>;
    if (typeof c.t !== 'string' || typeof c.s !== 'string' || typeof c.u !== 'string' || typeof c.v !== 'string' || typeof c.x !== 'number') return null;
    return { token: c.t, siteId: c.s, userId: c.u, apiVersion: c.v, expiresAt: c.x };
  } catch {
    return null;
  }
}

export interface SessionCheck {
  secrets: string[];
  leewaySeconds: number;
  ipBinding: IpBinding;
  /** The client address as nginx saw it, normalised. */
  clientIp: string;
  /** Seconds since the epoch. */
  now: number;
  /** When set, a token needs a whole-number `iat` no older than this (+ leeway), as at the gate. */
  maxSessionSeconds?: number;
}

/**
 * Verifies a session token as the gate does: HS256 only, with one of `secrets`, exp/nbf with the
 * leeway, `sub`/`username` present, and the `ip` claim bound to `clientIp` as `ipBinding` says (exact,
 * same /24 or /64, or off).
 * Returns the claims, or null for any failure. Not checked: the exact header bytes (the gate's
 * stricter header-segment match); revocation.
 */
export function verifySessionCookie(token: string | undefined, check: SessionCheck): Record<string, unknown> | null {
  if (token === undefined) return null;
  const c = verifySignedClaims(token, check.secrets, { clockTolerance: check.leewaySeconds, clockTimestamp: check.now });
  if (c === null) return null;
  if (typeof c.sub !== 'string' || typeof c.username !== 'string') return null;
  if (check.maxSessionSeconds !== undefined) {
    const iat = c.iat;
    if (typeof iat !== 'number' || !Number.isInteger(iat) || check.now - iat > check.maxSessionSeconds + check.leewaySeconds || iat > check.now + check.leewaySeconds) return null;
  }
  if (check.ipBinding !== 'off' && (typeof c.ip !== 'string' || !ipBindingAllows(check.ipBinding, c.ip, check.clientIp))) return null;
  return c;
}

/**
 * True when a session bound to `bound` (its `ip` claim) may be used from `clientIp` under `mode`,
 * as the gate decides it (njs/src/core/token.ts): the same address, the same /24 or /64, or any.
 */
export function ipBindingAllows(mode: IpBinding, bound: string, clientIp: string): boolean {
  return mode === 'off' || bound === clientIp || (mode === 'subnet' && sameSubnet(bound, clientIp));
}

export interface TableauCallOptions {
  /** Server root, e.g. https://tableau.example.com. */
  url: string;
  timeoutMs: number;
  fetch?: typeof globalThis.fetch;
}

/**
 * Ends the Tableau session (POST /api/{v}/auth/signout). Resolves true when Tableau accepted it;
 * throws on a network error or timeout. The token is never put in an error message.
 */
export async function signOutTableau(creds: TableauCredentials, opts: TableauCallOptions): Promise<boolean> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const res = await doFetch(`${opts.url.replace(/\/+$/, '')}/api/${creds.apiVersion}/auth/signout`, {
    method: 'POST',
    headers: { 'x-tableau-auth': creds.token, accept: 'application/json' },
    redirect: 'error',
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  await res.arrayBuffer();
  return res.status < 300;
}

/** GET `path` under the server root as JSON; the body is null when it is not JSON. Throws on a network error or timeout. */
async function getTableauJson(path: string, headers: Record<string, string>, opts: TableauCallOptions): Promise<{ status: number; body: unknown }> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const res = await doFetch(`${opts.url.replace(/\/+$/, '')}${path}`, {
    headers: { ...headers, accept: 'application/json' },
    redirect: 'error',
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, body };
}

function member(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/**
 * Get Current Server Session (`GET /api/{v}/sessions/current`, REST API 3.1 and later) with the
 * user's own token: the cheapest call that Tableau answers only for a live token (401 once it has
 * expired or been signed out). Returns the status and the session's user id (null when absent).
 * Throws on a network error or timeout; the token is never put in an error message.
 */
export async function fetchCurrentTableauSession(creds: TableauCredentials, opts: TableauCallOptions): Promise<{ status: number; userId: string | null }> {
  const { status, body } = await getTableauJson(`/api/${creds.apiVersion}/sessions/current`, { 'x-tableau-auth': creds.token }, opts);
  const userId = member(member(member(body, 'session'), 'user'), 'id');
  return { status, userId: typeof userId === 'string' ? userId : null };
}

/** GET /api/{v}/serverinfo, which needs no token; returns Tableau's `serverInfo` object (null when absent) and the status. */
export async function fetchTableauServerInfo(apiVersion: string, opts: TableauCallOptions): Promise<{ status: number; serverInfo: unknown }> {
  const { status, body } = await getTableauJson(`/api/${apiVersion}/serverinfo`, {}, opts);
  return { status, serverInfo: member(body, 'serverInfo') ?? null };
}

export interface TableauLogoutDeps {
  /** Server root; null when Tableau is not configured (nothing to do). */
  url: string | null;
  timeoutMs: number;
  secrets: string[];
  logger: Logger;
  fetch?: typeof globalThis.fetch;
}

/** The logout dependencies from the service config: Tableau cut off after at most 3 s, as at logout. */
export function tableauLogoutDeps(config: AuthConfig, logger: Logger): TableauLogoutDeps {
  return {
    url: config.tableau?.url ?? null,
    timeoutMs: Math.min(config.tableau?.timeoutMs ?? 0, 3000),
    secrets: [config.jwt.secret, ...config.jwt.previousSecrets],
    logger,
  };
}

/**
 * At a new sign-in (password form or OIDC): the session it replaces (the session cookie in
 * `cookieHeader`) may hold a Tableau token that no cookie will carry any more, so it is signed out.
 * Meant not to be awaited, like signOutTableauSession.
 */
export function signOutReplacedTableauSession(cookieHeader: string | undefined, requestId: string, config: AuthConfig, logger: Logger): Promise<void> {
  const previous = readCookie(cookieHeader, config.session.cookieName);
  if (previous.status !== 'ok') return Promise.resolve();
  return signOutTableauSession(previous.value, requestId, tableauLogoutDeps(config, logger));
}

/**
 * At logout, and when a new sign-in replaces a session: when the session token (expired or not, but signed with one of `secrets`) carries a
 * sealed Tableau token, signs it out at Tableau. Best effort and meant not to be awaited: it never
 * throws, cuts Tableau off after `timeoutMs`, and logs `tableau_signout_failed` (never the token).
 */
export async function signOutTableauSession(sessionToken: string | undefined, requestId: string, deps: TableauLogoutDeps): Promise<void> {
  if (sessionToken === undefined || deps.url === null) return;
  const sealed = verifySignedClaims(sessionToken, deps.secrets, { ignoreExpiration: true })?.[TABLEAU_TOKEN_CLAIM];
  if (sealed === undefined) return;
  const fail = (reason: string) => deps.logger.warn({ event: 'tableau_signout_failed', src: 'tableau', reason, request_id: requestId }, 'Tableau sign-out failed');
  const creds = openTableauCredentials(sealed, deps.secrets);
  if (creds === null) {
    fail('token-unreadable');
    return;
  }
  try {
    if (!(await signOutTableau(creds, { url: deps.url, timeoutMs: deps.timeoutMs, fetch: deps.fetch }))) fail('rejected');
  } catch (err) {
    fail(err instanceof Error ? err.name : 'error');
  }
}
