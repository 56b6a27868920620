/**
 * OpenID Connect Front-Channel Logout 1.0 (https://openid.net/specs/openid-connect-frontchannel-1_0.html),
 * section 2: the provider loads `GET /logout/frontchannel?iss=…&sid=…`, and the relying party ends
 * only the session whose provider session (`sid` of the ID token) and issuer match. Without that
 * check any site could sign users out with a link or an <img>.
 */
import { IDP_SID_CLAIM } from '../authenticators/oidc.js';
import type { OidcFlavour } from './oidc-config.js';

export type FrontChannelRefusal = 'sid-missing' | 'iss-missing' | 'iss-mismatch' | 'not-an-oidc-session' | 'sid-mismatch';

export type FrontChannelDecision =
  | { kind: 'logout' }
  /** No valid session cookie came with the request: nothing to end. */
  | { kind: 'no-session' }
  | { kind: 'refused'; reason: FrontChannelRefusal };

export interface FrontChannelInput {
  /** The query's `iss` and `sid`, as parsed (anything but one string counts as absent). */
  iss: unknown;
  sid: unknown;
  /** The configured provider's issuer identifier. */
  issuer: string;
  flavour: OidcFlavour;
  /** Verified claims of the request's session cookie, or null. */
  session: Record<string, unknown> | null;
}

/**
 * Decides a front-channel logout request.
 *
 * Guaranteed: `logout` only when `sid` equals the session's `idp_sid` claim, the session came from
 * this provider (`src` is the flavour) and `iss` equals the issuer. Entra ID sends `sid` without
 * `iss` (a documented deviation), so for the `azure` flavour a missing `iss` is accepted; a present
 * one must still match. With one configured provider, `sid` alone cannot name another OP's session.
 * Not checked: the session cookie itself (the caller verifies it).
 */
export function decideFrontChannelLogout(input: FrontChannelInput): FrontChannelDecision {
  const sid = typeof input.sid === 'string' && input.sid !== '' ? input.sid : undefined;
  const iss = typeof input.iss === 'string' && input.iss !== '' ? input.iss : undefined;
  if (sid === undefined) return { kind: 'refused', reason: 'sid-missing' };
  if (iss === undefined && input.flavour !== 'azure') return { kind: 'refused', reason: 'iss-missing' };
  if (iss !== undefined && iss !== input.issuer) return { kind: 'refused', reason: 'iss-mismatch' };
  if (input.session === null) return { kind: 'no-session' };
  if (input.session.src !== input.flavour) return { kind: 'refused', reason: 'not-an-oidc-session' };
  if (input.session[IDP_SID_CLAIM] !== sid) return { kind: 'refused', reason: 'sid-mismatch' };
  return { kind: 'logout' };
}
