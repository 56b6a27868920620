/**
 * How Tableau checks a Connected App (direct trust) JWT, for the Tableau fake: the checks and the
 * error codes of help.tableau.com's "Configure Connected Apps with Direct Trust" (step 3, the JWT)
 * and "Troubleshoot Connected Apps", in the order Tableau can make them:
 *
 *   10084 JWT_PARSE_ERROR          not three base64url JSON segments; `scp` not a list of strings
 *   10083 BAD_JWT                  header without alg HS256, `kid` or `iss`
 *   126   CONNECTED_APP_NOT_FOUND  `iss` names no enabled connected app (header and claim must agree)
 *   127   CONNECTED_APP_SECRET_NOT_FOUND  `kid` names none of the app's secrets
 *   16    LOGIN_FAILED             signature, `aud` not "tableau", expired, `jti` missing or reused,
 *                                  no scope that allows embedding views
 *   10096 JWT_EXPIRATION_EXCEEDS_CONFIGURED_EXPIRATION_PERIOD   `exp` more than the maximum ahead
 *   5     SYSTEM_USER_NOT_FOUND    `sub` is no user of the site (case-sensitive)
 *
 * The domain allowlist (the embedding page's origin) is checked by the fake's view page, not here.
 * Where Tableau's table gives no code for a case (a reused jti, a bad signature), the fake answers 16
 * LOGIN_FAILED with its own detail: the refusal is real, the exact code is the fake's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ConnectedAppRegistration {
  clientId: string;
  /** At most two, as in Tableau. */
  secrets: Array<{ id: string; value: string }>;
  /** A disabled app is "not found" to a JWT. Default true. */
  enabled?: boolean;
  /** Origins allowed to embed (scheme://host[:port]); unset: any, as with Tableau's "all domains". */
  domainAllowlist?: string[];
  /** Tableau Cloud's fixed maximum, Tableau Server's default: 10 minutes. */
  maxExpirationMinutes?: number;
}

export type ConnectedAppVerdict =
  | { ok: true; username: string; jti: string; scopes: string[]; claims: Record<string, unknown> }
  | { ok: false; code: string; summary: string; detail: string };

/** Scopes that allow loading an embedded view. */
const EMBED_SCOPES = ['tableau:views:embed', 'tableau:views:embed_authoring'];

const SEGMENT = /^[A-Za-z0-9_-]+$/;

function refuse(code: string, summary: string, detail: string): ConnectedAppVerdict {
  return { ok: false, code, summary, detail };
}

function parseSegment(segment: string): Record<string, unknown> | null {
  if (!SEGMENT.test(segment)) return null;
  try {
    const value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Verifies `token` as Tableau does for an embedded view at `nowSeconds`. `usedJtis` (jti → its exp)
 * is the replay memory: a verified jti is added to it; entries past their exp may be pruned.
 */
export function verifyConnectedAppJwt(
  token: string,
  app: ConnectedAppRegistration,
  siteUsers: readonly string[],
  nowSeconds: number,
  usedJtis: Map<string, number>,
): ConnectedAppVerdict {
  const parts = token.split('.');
  const header = parts.length === 3 ? parseSegment(parts[0]!) : null;
  const claims = parts.length === 3 ? parseSegment(parts[1]!) : null;
  if (header === null || claims === null || !SEGMENT.test(parts[2]!)) return refuse('10084', 'JWT_PARSE_ERROR', 'The JWT is not three base64url-encoded JSON segments');
  if (header.alg !== 'HS256' || typeof header.kid !== 'string' || typeof header.iss !== 'string') {
    return refuse('10083', 'BAD_JWT', 'The JWT header needs alg HS256, kid (the secret id) and iss (the client id)');
  }
  if (header.iss !== app.clientId || claims.iss !== app.clientId || app.enabled === false) {
    return refuse('126', 'CONNECTED_APP_NOT_FOUND', 'No enabled connected app has this client id');
  }
  const secret = app.secrets.find((s) => s.id === header.kid);
  if (secret === undefined) return refuse('127', 'CONNECTED_APP_SECRET_NOT_FOUND', "The connected app has no secret with this id");
  const expected = createHmac('sha256', Buffer.from(secret.value, 'utf8')).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString('base64url') !== parts[2]) {
    return refuse('16', 'LOGIN_FAILED', 'The JWT signature does not match the secret');
  }
  if (claims.aud !== 'tableau') return refuse('16', 'LOGIN_FAILED', 'The aud claim must be "tableau"');
  const scp = claims.scp;
  if (!Array.isArray(scp) || !scp.every((s) => typeof s === 'string')) return refuse('10084', 'JWT_PARSE_ERROR', 'The scp claim must be a list of strings');
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) return refuse('10084', 'JWT_PARSE_ERROR', 'The exp claim is missing');
  if (claims.exp <= nowSeconds) return refuse('16', 'LOGIN_FAILED', 'The JWT has expired');
  if (claims.exp - nowSeconds > (app.maxExpirationMinutes ?? 10) * 60) {
    return refuse('10096', 'JWT_EXPIRATION_EXCEEDS_CONFIGURED_EXPIRATION_PERIOD', 'The exp claim is further ahead than the maximum validity period');
  }
  if (typeof claims.jti !== 'string' || claims.jti === '') return refuse('16', 'LOGIN_FAILED', 'The jti claim is missing');
  for (const [jti, exp] of usedJtis) if (exp <= nowSeconds) usedJtis.delete(jti);
  if (usedJtis.has(claims.jti)) return refuse('16', 'LOGIN_FAILED', 'This JWT (jti) has already been used');
  if (!(scp as string[]).some((s) => EMBED_SCOPES.includes(s))) return refuse('16', 'LOGIN_FAILED', 'No scope in scp allows embedding views');
  if (typeof claims.sub !== 'string' || !siteUsers.includes(claims.sub)) return refuse('5', 'SYSTEM_USER_NOT_FOUND', 'Tableau user could not be found');
  usedJtis.set(claims.jti, claims.exp);
  return { ok: true, username: claims.sub, jti: claims.jti, scopes: scp as string[], claims };
}
