/**
 * Parsing and encoding of the stored password-hash strings we accept. Pure functions: no crypto here
 * beyond base64, so every rule about what a well-formed hash looks like sits in one place.
 *
 * Three formats:
 * - ours:    `$pbkdf2-sha512$i=<iterations>,l=<keylen>$<salt b64>$<hash b64>` (PHC-style, base64 without
 *            padding, standard alphabet);
 * - passlib: `$pbkdf2-sha512$<rounds>$<salt ab64>$<checksum ab64>`, as Python passlib writes it (Zuar WAF
 *            stores these). "ab64" is standard base64 with '.' instead of '+', no padding; the salt is the
 *            ab64-decoded bytes, the checksum a 64-byte PBKDF2-HMAC-SHA512 key.
 *            https://passlib.readthedocs.io/en/stable/lib/passlib.hash.pbkdf2_digest.html
 * - argon2id: the PHC string written by the `argon2` package, `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
 */

export type ParsedHash =
  | { kind: 'pbkdf2-sha512'; iterations: number; salt: Buffer; key: Buffer }
  | { kind: 'passlib-pbkdf2-sha512'; iterations: number; salt: Buffer; key: Buffer }
  | { kind: 'argon2id'; version: number; memoryCost: number; timeCost: number; parallelism: number };

/**
 * Bounds on the costs we are willing to run for a stored hash. A corrupt or planted row must not pin a
 * CPU for minutes or allocate gigabytes; hashes outside these bounds are treated as malformed.
 */
export const STORED_HASH_LIMITS = {
  pbkdf2MinIterations: 1,
  pbkdf2MaxIterations: 20_000_000,
  pbkdf2MinKeyBytes: 16,
  pbkdf2MaxKeyBytes: 128,
  minSaltBytes: 8,
  maxSaltBytes: 1024,
  argon2MaxMemoryKiB: 1_048_576,
  argon2MaxTimeCost: 64,
  argon2MaxParallelism: 16,
} as const;

const B64 = /^[A-Za-z0-9+/]+$/;
const AB64 = /^[A-Za-z0-9./]+$/;
const DECIMAL = /^(0|[1-9][0-9]{0,9})$/;

/** Standard base64 without padding. */
export function encodeB64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/** Passlib's "ab64": standard base64 with '.' for '+', without padding. */
export function encodeAb64(bytes: Buffer): string {
  return encodeB64(bytes).replace(/\+/g, '.');
}

/**
 * Strict unpadded base64 decoding: Node's decoder skips junk characters silently, so we check the
 * alphabet first and then insist the bytes re-encode to exactly the input (rejects stray low bits).
 */
function decodeB64Strict(text: string): Buffer | null {
  if (!B64.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64');
  return encodeB64(bytes) === text ? bytes : null;
}

function decodeAb64Strict(text: string): Buffer | null {
  if (!AB64.test(text)) return null;
  return decodeB64Strict(text.replace(/\./g, '+'));
}

function parseBoundedInt(text: string | undefined, min: number, max: number): number | null {
  if (text === undefined || !DECIMAL.test(text)) return null;
  const value = Number(text);
  return value >= min && value <= max ? value : null;
}

/** Parses `a=1,b=2` into a map; null on duplicates or anything that is not `name=value`. */
function parseParams(text: string): Map<string, string> | null {
  const params = new Map<string, string>();
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return null;
    const name = pair.slice(0, eq);
    if (params.has(name)) return null;
    params.set(name, pair.slice(eq + 1));
  }
  return params;
}

function saltOk(salt: Buffer | null): salt is Buffer {
  return salt !== null && salt.length >= STORED_HASH_LIMITS.minSaltBytes && salt.length <= STORED_HASH_LIMITS.maxSaltBytes;
}

function keyOk(key: Buffer | null): key is Buffer {
  return key !== null && key.length >= STORED_HASH_LIMITS.pbkdf2MinKeyBytes && key.length <= STORED_HASH_LIMITS.pbkdf2MaxKeyBytes;
}

/**
 * Recognises one of the three formats and checks its syntax and bounds. Returns null for anything else,
 * including known formats with bad base64, out-of-range costs or extra fields. Does not check that the
 * hash matches any password.
 */
export function parseStoredHash(stored: string): ParsedHash | null {
  if (typeof stored !== 'string' || stored.length > 4096) return null;
  const parts = stored.split('$');
  if (parts[0] !== '') return null;

  if (parts[1] === 'pbkdf2-sha512' && parts.length === 5) {
    const [, , params, saltText, keyText] = parts as [string, string, string, string, string];
    if (DECIMAL.test(params)) {
      const iterations = parseBoundedInt(params, STORED_HASH_LIMITS.pbkdf2MinIterations, STORED_HASH_LIMITS.pbkdf2MaxIterations);
      const salt = decodeAb64Strict(saltText);
      const key = decodeAb64Strict(keyText);
      // passlib always writes a 64-byte checksum for sha512; anything else was not written by passlib.
      // passlib accepts salts from 0 to 1024 bytes; an empty one cannot be written in this syntax.
      if (iterations === null || salt === null || salt.length > STORED_HASH_LIMITS.maxSaltBytes || key === null || key.length !== 64) {
        return null;
      }
      return { kind: 'passlib-pbkdf2-sha512', iterations, salt, key };
    }
    const map = parseParams(params);
    if (map === null || map.size !== 2) return null;
    const iterations = parseBoundedInt(map.get('i'), STORED_HASH_LIMITS.pbkdf2MinIterations, STORED_HASH_LIMITS.pbkdf2MaxIterations);
    const keyLength = parseBoundedInt(map.get('l'), STORED_HASH_LIMITS.pbkdf2MinKeyBytes, STORED_HASH_LIMITS.pbkdf2MaxKeyBytes);
    const salt = decodeB64Strict(saltText);
    const key = decodeB64Strict(keyText);
    if (iterations === null || keyLength === null || !saltOk(salt) || !keyOk(key) || key.length !== keyLength) return null;
    return { kind: 'pbkdf2-sha512', iterations, salt, key };
  }

  if (parts[1] === 'argon2id' && parts.length === 6) {
    const [, , versionText, params, saltText, hashText] = parts as [string, string, string, string, string, string];
    const version = versionText.startsWith('v=') ? parseBoundedInt(versionText.slice(2), 16, 19) : null;
    const map = parseParams(params);
    if (version === null || map === null || map.size !== 3) return null;
    const memoryCost = parseBoundedInt(map.get('m'), 8, STORED_HASH_LIMITS.argon2MaxMemoryKiB);
    const timeCost = parseBoundedInt(map.get('t'), 1, STORED_HASH_LIMITS.argon2MaxTimeCost);
    const parallelism = parseBoundedInt(map.get('p'), 1, STORED_HASH_LIMITS.argon2MaxParallelism);
    const salt = decodeB64Strict(saltText);
    const hash = decodeB64Strict(hashText);
    if (memoryCost === null || timeCost === null || parallelism === null || !saltOk(salt) || hash === null || hash.length < 4) {
      return null;
    }
    return { kind: 'argon2id', version, memoryCost, timeCost, parallelism };
  }

  return null;
}

/** Encodes our PBKDF2 format. */
export function encodePbkdf2Sha512(iterations: number, salt: Buffer, key: Buffer): string {
  return `$pbkdf2-sha512$i=${iterations},l=${key.length}$${encodeB64(salt)}$${encodeB64(key)}`;
}
