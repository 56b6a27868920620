/**
 * AES-256-GCM sealing of short secrets kept for a session (the Tableau credentials token in the
 * session JWT, an identity provider's refresh token in the session row), under keys derived from
 * the JWT secrets with HKDF-SHA256, so they rotate with JWT_SECRET / JWT_PREVIOUS_SECRETS.
 *
 * Sealed format: base64url(iv (12 random bytes) | ciphertext | GCM tag (16 bytes)).
 */
import crypto from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The 32-byte AES-256-GCM key for `secret` and purpose `info` (HKDF-SHA256, empty salt). */
export function deriveSealingKey(secret: string, info: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), info, 32));
}

/** Seals `plain` under `key`, authenticating `aad` with it when given. Every call uses a fresh random IV. */
export function sealText(plain: string, key: Buffer, aad?: string): string {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  if (aad !== undefined) cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/**
 * Opens a sealed value with whichever of `keys` sealed it (and the same `aad`). Returns null when
 * it is not a sealed value or no key opens it. Not checked: what the plain text contains.
 */
export function openText(sealed: unknown, keys: Buffer[], aad?: string): string | null {
  if (typeof sealed !== 'string' || !/^[A-Za-z0-9_-]+$/.test(sealed)) return null;
  const raw = Buffer.from(sealed, 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return null;
  const iv = raw.subarray(0, IV_BYTES);
  const tag = raw.subarray(raw.length - TAG_BYTES);
  const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
  for (const key of keys) {
    try {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
      if (aad !== undefined) decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      continue;
    }
  }
  return null;
}
