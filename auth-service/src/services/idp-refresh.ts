/**
 * An identity provider's refresh token as the session row keeps it (sessions.idp_refresh): sealed
 * with AES-256-GCM under a key derived from the JWT secret (HKDF info 'gw-idp-refresh-v1', another
 * key than the Tableau token's), with the session's sid as additional authenticated data, so a
 * value copied into another row does not open. A database dump alone never shows the token.
 */
import { deriveSealingKey, openText, sealText } from './sealed-text.js';

const HKDF_INFO = 'gw-idp-refresh-v1';

/** Seals `refreshToken` for session `sid` under the active secret. */
export function sealIdpRefresh(refreshToken: string, sid: string, secret: string): string {
  return sealText(refreshToken, deriveSealingKey(secret, HKDF_INFO), sid);
}

/**
 * The refresh token sealed for `sid` under one of `secrets` (the active one and the previous ones
 * still in their grace period), or null when none opens it. Renewal seals it again under the
 * active secret, so a session that renews keeps it across a rotation.
 */
export function openIdpRefresh(sealed: string, sid: string, secrets: string[]): string | null {
  return openText(sealed, secrets.map((s) => deriveSealingKey(s, HKDF_INFO)), sid);
}
