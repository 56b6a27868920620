/**
 * The short-lived cookie that carries an OIDC sign-in across the redirect to the provider: state,
 * nonce, PKCE verifier and the return path. It is encrypted and authenticated (AES-256-GCM) with a
 * key derived from the JWT secret by HKDF with its own `info`, so the verifier never travels in
 * clear and a forged or edited cookie is simply "no state".
 */
import crypto from 'node:crypto';

export const OIDC_STATE_COOKIE = 'gw_oidc';
/** Ten minutes: long enough for a password + MFA prompt at the provider. */
export const OIDC_STATE_TTL_SECONDS = 600;

const KEY_INFO = 'identity-gateway oidc-state v1';
const COOKIE_VALUE = /^[A-Za-z0-9_-]{40,2000}$/;

export interface OidcFlowState {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Already validated with safeReturnPath. */
  returnPath: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export interface StateSealer {
  seal(state: OidcFlowState): string;
  /** The state, or null when the value is malformed, forged, sealed with another key or expired. */
  open(value: string | undefined, nowMs: number): OidcFlowState | null;
}

export function createStateSealer(jwtSecret: string): StateSealer {
  const key = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(jwtSecret, 'utf8'), Buffer.alloc(0), KEY_INFO, 32));
  const aad = Buffer.from(OIDC_STATE_COOKIE, 'utf8');
  return {
    seal(state) {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    },
    open(value, nowMs) {
      if (value === undefined || !COOKIE_VALUE.test(value)) return null;
      const raw = Buffer.from(value, 'base64url');
      if (raw.length < 12 + 16 + 2) return null;
      let parsed: unknown;
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        decipher.setAAD(aad);
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        parsed = JSON.parse(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8'));
      } catch {
        return null;
      }
      const s = parsed as Partial<OidcFlowState>;
      if (typeof s.state !== 'string' || typeof s.nonce !== 'string' || typeof s.codeVerifier !== 'string' || typeof s.returnPath !== 'string' || typeof s.expiresAt !== 'number') return null;
      if (Math.floor(nowMs / 1000) >= s.expiresAt) return null;
      return { state: s.state, nonce: s.nonce, codeVerifier: s.codeVerifier, returnPath: s.returnPath, expiresAt: s.expiresAt };
    },
  };
}
