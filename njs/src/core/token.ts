/**
 * Session token (compact JWS, HS256) verification for the gate. Pure: crypto, base64url decoding
 * and the clock are passed in, so Node's jest and the njs CLI run the same code.
 */
import { hasCanonicalSha256Shape, isStrictBase64url } from './base64url.js';
import { isJsonArray } from './session-contract.js';
import { sameSubnet } from './ip-binding.js';
import type { DenyReason, GateConfig, SessionClaims } from './session-contract.js';

export interface VerifyInput {
  /**
   * The gate config, or the part of it read here: keys, keyRetiredAt, leewaySeconds,
   * maxSessionSeconds, ipBinding. Passed as is rather than copied field by field into this object:
   * njs builds this object on every request, and each property costs there.
   */
  config: VerifyConfig;
  /** Current time, seconds since the epoch. */
  now: number;
  /** nginx's $remote_addr. */
  remoteAddr: string;
  /** base64url (unpadded) HMAC-SHA256 of `data` keyed with `secret`. */
  hmac: (secret: string, data: string) => string;
  /** sha256 hex of `s`; used to compare MACs without an early-exit string compare on secret data. */
  digest: (s: string) => string;
  /** base64url -> UTF-8 string. Only called after the MAC matched. */
  decode: (b64url: string) => string;
}

/** The GateConfig fields verifySessionToken reads. */
export type VerifyConfig = Pick<GateConfig, 'keys' | 'keyRetiredAt' | 'leewaySeconds' | 'maxSessionSeconds' | 'ipBinding'>;

/**
 * `escaped` is true when the payload's JSON text holds a backslash or DEL, the only ways a claim
 * value can contain a control character (njs's JSON.parse refuses raw control characters), so
 * callers can skip sanitising honest claims.
 */
export type VerifyResult = { ok: true; claims: SessionClaims; escaped: boolean } | { ok: false; reason: DenyReason };

function deny(reason: DenyReason): VerifyResult {
  return { ok: false, reason: reason };
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && isFinite(v);
}

function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function isStringArray(v: unknown): v is string[] {
  if (!isJsonArray(v)) return false;
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') return false;
  }
  return true;
}

/**
 * Verifies a session token and returns its claims.
 *
 * Order, cheapest and least trusting first:
 * 1. exactly three '.'-separated segments, else `token-invalid`;
 * 2. the header segment must be an own key of `keys`, compared as a string. The header is never
 *    decoded or parsed, so `alg: none`, RS256, a different `kid`, reordered or extra fields all
 *    miss and give `token-invalid` (the algorithm-confusion class of JWT bugs cannot happen).
 *    A miss whose header is listed in `keyRetiredAt` (a retired key whose secret the gate no longer
 *    holds) gives `token-key-retired` instead; that one is not MAC-checked (there is no secret);
 * 3. signature: 43 characters whose last one has zero unused bits (the canonical length and end
 *    of a 32-byte MAC); payload: strict base64url. Else `token-invalid`;
 * 4. HMAC-SHA256 over `header.payload`, compared as sha256(expected) === sha256(given), else
 *    `token-invalid`. This compares the *encoded* strings, so the given signature must equal the
 *    canonical base64url spelling character for character (no skipped characters, no padding,
 *    no flipped unused bits), which is why step 3 does not run a regex over the signature;
 * 4b. a header listed in `keyRetiredAt` (a previous key) with `now >= retiredAt` gives
 *    `token-key-retired`: the grace period of that key is over;
 * 5. only then the payload is decoded and JSON-parsed; it must be a JSON object, else
 *    `token-malformed`;
 * 6. `exp` a finite number (else `token-malformed`); `now > exp + leeway` gives `token-expired`,
 *    but only after every later step passed (an expired token that is otherwise valid is the one
 *    the gate renews; a forged, too old or wrong-address one is refused for that);
 *    `nbf`, if present, a finite number (else `token-malformed`), `now + leeway < nbf` gives
 *    `token-not-yet-valid`;
 * 6b. `iat` a whole number (else `token-malformed`); `iat > now + leeway` (issued in the future)
 *    gives `token-not-yet-valid`; `now - iat > maxSessionSeconds + leeway` gives `token-too-old`
 *    while `exp` is still ahead (a key holder cannot mint a session that outlives the configured
 *    maximum) and `session-max-age` once it has passed too (the ordinary end of a session);
 * 7. `sub` and `username` non-empty strings, `groups` absent or an array of strings, else
 *    `token-malformed`;
 * 8. `ip` must be a string and: `exact`, equal to `remoteAddr`; `subnet`, equal or in the same
 *    /24 (IPv4) or /64 (IPv6) (sameSubnet); else `ip-mismatch`. `off` skips this. Any other value
 *    of `ipBinding` is treated as `exact`.
 *
 * Not checked: `src`, `sid`, `name`, `email` (types are only enforced where listed above);
 * revocation (a signed, unexpired token stays valid until `exp`); token length (nginx's header
 * buffer bounds it).
 */
export function verifySessionToken(token: string, input: VerifyInput): VerifyResult {
  const config = input.config;
  const parts = token.split('.');
  if (parts.length !== 3) return deny('token-invalid');
  const header = parts[0];
  const payload = parts[1];
  const signature = parts[2];

  // Plain lookups, no hasOwnProperty (its first use costs ~3,600 CPU instructions per request in
  // njs 0.7.9): an inherited member such as 'constructor' or '__proto__' is never a string or a number.
  const secret = config.keys[header];
  if (!isNonEmptyString(secret)) return deny(typeof config.keyRetiredAt[header] === 'number' ? 'token-key-retired' : 'token-invalid');
  if (!hasCanonicalSha256Shape(signature) || !isStrictBase64url(payload)) return deny('token-invalid');

  const expected = input.hmac(secret, header + '.' + payload);
  if (input.digest(expected) !== input.digest(signature)) return deny('token-invalid');
  // `header` is an own key of `keys` (a JWT header segment), so no prototype member is read here;
  // a non-number would compare false and refuse.
  const retiredAt = config.keyRetiredAt[header];
  if (retiredAt !== undefined && !(input.now < retiredAt)) return deny('token-key-retired');

  let claims: unknown;
  let text: string;
  try {
    text = input.decode(payload);
    claims = JSON.parse(text);
  } catch (e) {
    return deny('token-malformed');
  }
  if (typeof claims !== 'object' || claims === null || isJsonArray(claims)) return deny('token-malformed');
  const c = claims as { [claim: string]: unknown };

  const now = input.now;
  const leeway = config.leewaySeconds;
  const exp = c.exp;
  if (!isFiniteNumber(exp)) return deny('token-malformed');
  // An expired token is still checked to the end: `token-expired` (which the gate answers by renewing
  // the session, issue 9) only for a token that is otherwise valid.
  const expired = now > exp + leeway;
  // JSON has no `undefined`, and Object.prototype has no `nbf` or `groups`: undefined means absent.
  if (c.nbf !== undefined) {
    const nbf = c.nbf;
    if (!isFiniteNumber(nbf)) return deny('token-malformed');
    if (now + leeway < nbf) return deny('token-not-yet-valid');
  }
  const iat = c.iat;
  // Inline, no isFiniteNumber call (calls are what cost in njs): NaN and ±Infinity give NaN for % 1.
  if (typeof iat !== 'number' || iat % 1 !== 0) return deny('token-malformed');
  const age = now - iat;
  if (age < -leeway) return deny('token-not-yet-valid');
  // Past the maximum age: the ordinary end of a session once the token has expired too (quiet,
  // nothing to renew), a token to distrust while its exp is still ahead (logged as a warning).
  if (age > config.maxSessionSeconds + leeway) return deny(expired ? 'session-max-age' : 'token-too-old');

  if (!isNonEmptyString(c.sub) || !isNonEmptyString(c.username)) return deny('token-malformed');
  if (c.groups !== undefined && !isStringArray(c.groups)) return deny('token-malformed');

  const binding = config.ipBinding;
  if (binding !== 'off') {
    const ip = c.ip;
    if (typeof ip !== 'string') return deny('ip-mismatch');
    if (ip !== input.remoteAddr && (binding !== 'subnet' || !sameSubnet(ip, input.remoteAddr))) return deny('ip-mismatch');
  }
  if (expired) return deny('token-expired');

  return { ok: true, claims: c as SessionClaims, escaped: text.indexOf('\\') >= 0 || text.indexOf('\x7f') >= 0 };
}
