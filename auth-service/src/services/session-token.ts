/**
 * Issues the session token the njs gate verifies on every request. The gate never parses the JWT
 * header: it looks the header segment up, as a string, in GateConfig.keys. So the header emitted
 * here must be byte for byte `sessionJwtHeader(kid)` from the shared contract, and the gate config
 * must be built from the same `headerSegmentFor` (see gate-config.ts).
 */
import crypto from 'node:crypto';
import jwt from 'jsonwebtoken';
import { SESSION_ALG, sessionJwtHeader, type SessionClaims } from '../../../njs/src/core/session-contract.js';
import type { Identity } from '../authenticators/types.js';
import { selectTokenGroups, type GroupSelection, type SelectedGroups } from './group-selection.js';

/** Claims an authenticator's `extraClaims` may not override. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set(['sub', 'username', 'name', 'email', 'email_verified', 'groups', 'groups_count', 'groups_digest', 'src', 'ip', 'sid', 'iat', 'exp', 'nbf', 'jti', 'iss', 'aud']);

/**
 * Key id of a secret: the first 12 characters of base64url(sha256('gw-kid:' + secret)). It names
 * the key in the JWT header so the gate can hold several (rotation) without trying each; it does
 * not reveal the secret (a one-way hash of a 32+ byte random value).
 */
export function deriveKeyId(secret: string): string {
  return crypto.createHash('sha256').update('gw-kid:' + secret, 'utf8').digest('base64url').slice(0, 12);
}

/** The exact base64url header segment of every token signed with `secret`. */
export function headerSegmentFor(secret: string): string {
  return Buffer.from(JSON.stringify(sessionJwtHeader(deriveKeyId(secret))), 'utf8').toString('base64url');
}

export interface IssueSessionInput {
  identity: Identity;
  /** The client address as nginx saw it ($remote_addr), already normalised. */
  ip: string;
  /** Active signing secret (the HMAC key is its UTF-8 bytes, as in njs). */
  secret: string;
  ttlSeconds: number;
  /** Milliseconds since the epoch. */
  now: number;
  /**
   * Which of `identity.groups` the token carries (group-selection.ts): the groups the current
   * policy names plus PAYLOAD_GROUPS. `identity.groups` is the full list (a renewal passes the list
   * it keeps server-side).
   */
  groupSelection: GroupSelection;
}

export interface IssuedSession {
  token: string;
  claims: SessionClaims;
  /** What the group selection kept, and the full count, for the log. */
  groups: SelectedGroups;
}

/**
 * Builds the claims for `identity` and signs them with HS256.
 *
 * Guaranteed: the header is `sessionJwtHeader(deriveKeyId(secret))` (alg, typ, kid in that order);
 * `iat` is `floor(now / 1000)` and `exp` is `iat + ttlSeconds`; `sid` is 16 random bytes in
 * base64url; `name`/`email` are present only when the identity has them; `extraClaims` never
 * replace a reserved claim; `groups` is selectTokenGroups' list (at most MAX_TOKEN_GROUP_BYTES), and
 * when it left groups out, `groups_count` (the full count) and `groups_digest` (of the full list) say so.
 * Throws SessionTooLargeError when the groups the policy names do not fit.
 * Not checked: the size of the resulting cookie (large extra claims can still get near 4 KiB).
 */
export function issueSessionToken(input: IssueSessionInput): IssuedSession {
  const { identity } = input;
  const iat = Math.floor(input.now / 1000);
  const selected = selectTokenGroups(identity.groups, input.groupSelection);
  const claims: SessionClaims = {
    sub: identity.sub,
    username: identity.username,
    groups: selected.groups,
    src: identity.src,
    ip: input.ip,
    sid: crypto.randomBytes(16).toString('base64url'),
    iat,
    exp: iat + input.ttlSeconds,
  };
  if (selected.filtered) {
    claims.groups_count = selected.count;
    claims.groups_digest = selected.digest;
  }
  if (identity.name) claims.name = identity.name;
  if (identity.email) {
    claims.email = identity.email;
    claims.email_verified = identity.emailVerified === true;
  }
  for (const [claim, value] of Object.entries(identity.extraClaims ?? {})) {
    if (!RESERVED_CLAIMS.has(claim) && value !== undefined) claims[claim] = value;
  }
  return { token: signSessionClaims(claims, input.secret), claims, groups: selected };
}

/**
 * The claims of a session token signed (HS256 only) with one of `secrets`, or null when none of them
 * verifies it or its payload is not an object. `options` are jsonwebtoken's time checks
 * (ignoreExpiration, clockTolerance, clockTimestamp). Not checked: any claim; callers check what
 * they rely on.
 */
export function verifySignedClaims(
  token: string,
  secrets: readonly string[],
  options: Pick<jwt.VerifyOptions, 'ignoreExpiration' | 'clockTolerance' | 'clockTimestamp'> = {},
): Record<string, unknown> | null {
  for (const secret of secrets) {
    let claims: unknown;
    try {
      claims = jwt.verify(token, crypto.createSecretKey(Buffer.from(secret, 'utf8')), { ...options, algorithms: [SESSION_ALG as jwt.Algorithm] });
    } catch {
      // Not signed with this key (or not a token at all): try the next.
      continue;
    }
    // Only the key that signed it verifies it: no other key can give another answer.
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : null;
  }
  return null;
}

/** Signs `claims` as they are (HS256, header `sessionJwtHeader(deriveKeyId(secret))`); at sign-in and at renewal. */
export function signSessionClaims(claims: SessionClaims, secret: string): string {
  // A KeyObject, not a string: jsonwebtoken then skips its public-key sniffing (see njs-notes), and
  // the key bytes are exactly the secret's UTF-8 bytes, as the gate's HMAC uses them.
  const key = crypto.createSecretKey(Buffer.from(secret, 'utf8'));
  return jwt.sign(claims, key, { algorithm: SESSION_ALG as jwt.Algorithm, keyid: deriveKeyId(secret) });
}
