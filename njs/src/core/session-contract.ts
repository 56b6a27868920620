/**
 * The one contract between the auth service (which signs session tokens) and the njs gate
 * (which verifies them on every request). Both sides import this file; nothing here may use
 * Node or njs APIs, and it must stay within the njs 0.7.9 syntax subset (see njs-notes).
 */
import type { AssertionGateConfig } from './assertion.js';

/** Default name of the session cookie. Operators may change it with SESSION_COOKIE_NAME. */
export const DEFAULT_SESSION_COOKIE = 'gw_session';

/** The only signing algorithm the gate accepts. */
export const SESSION_ALG = 'HS256';

/** Claims inside a session token. The gate requires exp, iat, sub, username and ip (unless IP binding is off). */
export interface SessionClaims {
  /** Stable user id (local users: the row uuid). */
  sub: string;
  username: string;
  name?: string;
  email?: string;
  /**
   * True only when the source vouches for `email` (local and Tableau accounts are admin-managed;
   * OIDC needs the provider's `email_verified`). The policy's derived `email_domain` exists only
   * when this is true.
   */
  email_verified?: boolean;
  /**
   * The groups the gate and the upstream need, not necessarily all of the user's (issue 9): those
   * the compiled policy names plus PAYLOAD_GROUPS, within MAX_TOKEN_GROUP_BYTES
   * (auth-service/src/services/group-selection.ts).
   */
  groups: string[];
  /** Present only when `groups` leaves some out: how many distinct groups the user has. */
  groups_count?: number;
  /** With groups_count: base64url SHA-256 of the JSON array of all the user's groups, sorted. */
  groups_digest?: string;
  /** Identity source that authenticated the user, e.g. "local". */
  src: string;
  /** The client address the session is bound to; compared with nginx's $remote_addr per GateConfig.ipBinding. */
  ip: string;
  /** Random session id, for log correlation and logout. */
  sid: string;
  /** Issued at, whole seconds since the epoch. Required: the gate bounds a session's age from it. */
  iat: number;
  exp: number;
  nbf?: number;
  [claim: string]: unknown;
}

/**
 * Claims forwarded upstream as X-Payload-<claim> headers, in this order. Arrays are comma-joined.
 * Each one has a matching `js_var $gate_h_<claim>` and `proxy_set_header X-Payload-<claim>` in
 * nginx/snippets; adding a claim here means adding it there too (a test checks both lists).
 */
export const FORWARDED_CLAIMS = ['sub', 'username', 'name', 'email', 'groups', 'groups_count', 'groups_digest', 'src', 'sid', 'tableau_site_id', 'tableau_user_id', 'tableau_site_role'];

/** Claims that are never forwarded (binding and timing data). */
export const INTERNAL_CLAIMS = ['ip', 'iat', 'exp', 'nbf'];

/**
 * Runtime configuration of the gate, written as JSON by the auth service / launcher and loaded
 * into nginx once per config load with `js_preload_object gate_config from ...`.
 */
export interface GateConfig {
  cookieName: string;
  /** How the `ip` claim is compared with $remote_addr (SESSION_IP_BINDING; see IpBinding). */
  ipBinding: IpBinding;
  /** Clock skew tolerated for exp/nbf/iat, in seconds. */
  leewaySeconds: number;
  /**
   * The longest a session may last, counted from the token's `iat` (whatever its `exp` says):
   * `now - iat > maxSessionSeconds + leewaySeconds` gives `token-too-old`.
   */
  maxSessionSeconds: number;
  /** Path of the login page the gate redirects browsers to. */
  loginPath: string;
  /**
   * Accepted keys, indexed by the exact base64url JWT header segment the auth service emits for
   * that key ({"alg":"HS256","typ":"JWT","kid":...}). Any other header (alg none, RS256, extra
   * fields) has no entry and is refused without being parsed. Values are the HMAC secrets.
   */
  keys: { [headerSegment: string]: string };
  /**
   * Previous keys only (JWT_PREVIOUS_SECRETS): when each one retires, in seconds since the epoch,
   * indexed like `keys`. A token whose header segment is listed here is refused from that time on
   * with `token-key-retired`. The active key is never listed. A retired key's secret may be absent
   * from `keys` (the auth service drops keys that had already retired when it wrote the file).
   */
  keyRetiredAt: { [headerSegment: string]: number };
  /** Present only when Tableau sign-in is configured: the `/api/` pass-through (see tableau-api.ts). */
  tableau?: TableauGateConfig;
  /**
   * Present only when ASSERTION_KEY_FILE is set: every allowed session request needs a bound
   * assertion cookie for its app, forwarded as X-Gateway-Assertion (see core/assertion.ts).
   */
  assertion?: AssertionGateConfig;
}

/**
 * How a session is bound to the client address: `exact` (the `ip` claim equals $remote_addr),
 * `subnet` (same /24 for IPv4, same /64 for IPv6), `off` (not compared).
 */
export type IpBinding = 'exact' | 'subnet' | 'off';

/** What the gate needs to call Tableau's REST API with the user's own credentials token. */
export interface TableauGateConfig {
  /** Tableau's origin, e.g. https://tableau.example.com (scheme, host, optional port; no path). */
  origin: string;
  /** Host header for Tableau (host[:port] of `origin`). */
  host: string;
  /**
   * Raw AES-256-GCM keys (base64url of 32 bytes) that open the `tta` claim, indexed like `keys` by
   * the JWT header segment of the secret they were derived from.
   */
  keys: { [headerSegment: string]: string };
}

/** The session claim holding the sealed Tableau credentials. Never forwarded (not in FORWARDED_CLAIMS). */
export const TABLEAU_TOKEN_CLAIM = 'tta';

/** Why the gate refused a request. Kebab-case; appears in the access log as `reason`. */
export type DenyReason =
  | 'token-missing'
  | 'token-duplicate'
  | 'token-malformed'
  | 'token-invalid'
  | 'token-expired'
  | 'token-not-yet-valid'
  | 'token-too-old'
  /** Expired and past SESSION_MAX_SECONDS: the session's ordinary end (not renewed, not warned). */
  | 'session-max-age'
  | 'token-key-retired'
  | 'ip-mismatch'
  /**
   * The token verifies, but its `sid` is in nginx's revocation zone (njs >= 0.8 only, see
   * core/revocations.ts): the session was ended less than one token lifetime ago.
   */
  | 'session-revoked'
  /**
   * Not a refusal: the session is valid but the app's assertion cookie is missing, duplicated or bound
   * to another token (ASSERTION_KEY_FILE on): nginx gets a fresh one through the renewal path.
   */
  | 'assertion-missing'
  | 'policy-denied'
  /**
   * The location names an app (`set $gate_app NAME;`) that the compiled policy has no section for,
   * or no policy is configured at all: refused (403) and logged as an error, never a silent allow.
   */
  | 'app-unknown'
  | 'path-ambiguous'
  | 'path-too-long'
  | 'method-override'
  | 'gate-error';

/** Why the gate let a request through: a valid session, or an anonymous request a public rule allows. */
export type AllowReason = 'session-valid' | 'public';

/**
 * Sources whose `username` comes from a claim the user or a tenant admin can change
 * (`preferred_username`, `email`): for them the stable identity is `sub`, not `username`.
 */
export const MUTABLE_USERNAME_SOURCES = ['oidc', 'azure'];

/**
 * True for JSON arrays (what JSON.parse returns for `[...]`), without touching the global `Array`:
 * in njs 0.7.9 the first use of a built-in constructor in a request instantiates it, ~2,500 CPU
 * instructions per request for `Array.isArray` alone. JSON values are never functions, so only an
 * array has a callable `join` (through Array.prototype).
 * Not for nginx's preloaded objects: they have no prototype chain (see jsonListShape in gate-config).
 */
export function isJsonArray(v: unknown): v is unknown[] {
  return typeof v === 'object' && v !== null && typeof (v as { join?: unknown }).join === 'function';
}

/**
 * The stable, source-qualified user id: `<src>:<username>` for sources whose usernames are
 * admin-assigned account keys (local, tableau, custom modules), `<src>:<sub>` for OIDC/Entra.
 * Policy `users:` entries match this id (a bare `kirk` means `local:kirk`), and upstreams receive it
 * as `X-Payload-user`, so an OIDC account named `kirk` is never the local `kirk`.
 * Guaranteed: never empty for a token the gate accepted (src and sub/username are required).
 * Not checked: that `src` names a configured source.
 */
export function qualifiedUserId(src: string, username: string, sub: string): string {
  return src + ':' + (isMutableUsernameSource(src) ? sub : username);
}

/**
 * `src` is one of MUTABLE_USERNAME_SOURCES. Spelled out rather than looped over the array: njs
 * builds every module-level array again for each request (~190 CPU instructions per element), and
 * the gate uses only this test. A unit test keeps the two in step.
 */
export function isMutableUsernameSource(src: unknown): boolean {
  return src === 'oidc' || src === 'azure';
}

/** The JWT header the auth service signs with, for a given key id. Key order matters. */
export function sessionJwtHeader(kid: string): { alg: string; typ: string; kid: string } {
  return { alg: SESSION_ALG, typ: 'JWT', kid: kid };
}
