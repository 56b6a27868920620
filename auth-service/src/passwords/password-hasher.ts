import crypto from 'node:crypto';
import { promisify } from 'node:util';
import argon2 from 'argon2';
import { encodePbkdf2Sha512, parseStoredHash, type ParsedHash } from './hash-formats.js';

const nodePbkdf2: Pbkdf2 = promisify(crypto.pbkdf2);

export type PasswordAlgorithm = 'pbkdf2-sha512' | 'argon2id';

export const PASSWORD_ALGORITHMS: readonly PasswordAlgorithm[] = ['pbkdf2-sha512', 'argon2id'];

export interface Argon2Cost {
  /** KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface PasswordPolicy {
  /** The algorithm new hashes are written with. Both are always accepted for verification. */
  algorithm: PasswordAlgorithm;
  pbkdf2Iterations: number;
  argon2: Argon2Cost;
}

/**
 * OWASP Password Storage Cheat Sheet minimums: PBKDF2-HMAC-SHA512 at 210,000 iterations; argon2id with
 * 19 MiB, 2 iterations, 1 degree of parallelism.
 * https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
 */
export const DEFAULT_PASSWORD_POLICY: Readonly<PasswordPolicy> = Object.freeze({
  algorithm: 'pbkdf2-sha512',
  pbkdf2Iterations: 210_000,
  argon2: Object.freeze({ memoryCost: 19_456, timeCost: 2, parallelism: 1 }),
});

const PBKDF2_SALT_BYTES = 16;
const PBKDF2_KEY_BYTES = 64;
/** The padding's output is thrown away; only its cost matters, so any fixed salt does. */
const PADDING_SALT = Buffer.alloc(PBKDF2_SALT_BYTES);

export interface PasswordHasher {
  /** Hashes with the configured algorithm and cost, with a fresh random salt. */
  hash(password: string): Promise<string>;
  /**
   * True only if `stored` is a well-formed hash in one of our formats (ours, passlib's pbkdf2-sha512,
   * argon2id) and matches `password`. Never throws: malformed, unknown or out-of-bounds hashes give false.
   */
  verify(password: string, stored: string): Promise<boolean>;
  /**
   * True when `stored` should be replaced after a successful login: another algorithm or cost than the
   * policy, passlib's format, or anything we cannot parse.
   */
  needsRehash(stored: string): boolean;
  /**
   * Spends the time of one verification against a dummy hash of the current policy, so that an unknown
   * username costs what a wrong password costs. The dummy is created on first use and kept; the very first
   * call therefore also pays for one hash (call it once at start-up to warm it).
   */
  verifyDummy(password: string): Promise<void>;
  /**
   * `verify`, then at least the work of `verifyDummy`: a stored PBKDF2 hash (ours or passlib's) with
   * fewer iterations than the policy is topped up with the missing iterations, so a user whose hash
   * was imported at a low cost (passlib at 1,000 rounds) answers as slowly as an unknown user, and
   * the timing does not reveal the account (issue 8). Any other hash cheaper than or unlike the
   * policy's (unparseable, another algorithm, lower argon2 costs) is followed by a whole `verifyDummy`.
   * Not guaranteed: equal time for those other kinds (never faster than an unknown user, but up to one
   * stored verification slower); a successful sign-in replaces such hashes (needsRehash).
   */
  verifyAtDummyCost(password: string, stored: string): Promise<boolean>;
}

/** Node's PBKDF2, injectable so tests can count the work instead of timing it. */
export type Pbkdf2 = (password: string, salt: Buffer, iterations: number, keyLength: number, digest: 'sha512') => Promise<Buffer>;

async function verifyParsed(password: string, parsed: ParsedHash, stored: string, pbkdf2: Pbkdf2): Promise<boolean> {
  if (parsed.kind === 'argon2id') {
    // The argon2 binding compares in constant time (argon2_verify).
    return await argon2.verify(stored, password);
  }
  const derived = await pbkdf2(password, parsed.salt, parsed.iterations, parsed.key.length, 'sha512');
  return crypto.timingSafeEqual(derived, parsed.key);
}

/**
 * Creates a hasher for one policy. Costs are taken as given: validate policies from the environment
 * with `passwordPolicyFromEnv` first.
 */
export function createPasswordHasher(policy: PasswordPolicy, deps: { pbkdf2?: Pbkdf2 } = {}): PasswordHasher {
  const { algorithm, pbkdf2Iterations } = policy;
  const pbkdf2 = deps.pbkdf2 ?? nodePbkdf2;
  const argonCost = { ...policy.argon2 };
  let dummyHash: Promise<string> | undefined;

  async function hash(password: string): Promise<string> {
    if (algorithm === 'argon2id') {
      return await argon2.hash(password, { type: argon2.argon2id, ...argonCost });
    }
    const salt = crypto.randomBytes(PBKDF2_SALT_BYTES);
    const key = await pbkdf2(password, salt, pbkdf2Iterations, PBKDF2_KEY_BYTES, 'sha512');
    return encodePbkdf2Sha512(pbkdf2Iterations, salt, key);
  }

  async function verify(password: string, stored: string): Promise<boolean> {
    if (typeof password !== 'string') return false;
    const parsed = parseStoredHash(stored);
    if (parsed === null) return false;
    try {
      return await verifyParsed(password, parsed, stored, pbkdf2);
    } catch {
      return false;
    }
  }

  function needsRehash(stored: string): boolean {
    const parsed = parseStoredHash(stored);
    if (parsed === null || parsed.kind === 'passlib-pbkdf2-sha512') return true;
    if (parsed.kind !== algorithm) return true;
    if (parsed.kind === 'pbkdf2-sha512') {
      return parsed.iterations !== pbkdf2Iterations || parsed.key.length !== PBKDF2_KEY_BYTES || parsed.salt.length < PBKDF2_SALT_BYTES;
    }
    return (
      parsed.version !== 0x13 ||
      parsed.memoryCost !== argonCost.memoryCost ||
      parsed.timeCost !== argonCost.timeCost ||
      parsed.parallelism !== argonCost.parallelism
    );
  }

  async function verifyDummy(password: string): Promise<void> {
    dummyHash ??= hash(crypto.randomBytes(18).toString('base64url'));
    let stored: string;
    try {
      stored = await dummyHash;
    } catch {
      dummyHash = undefined;
      return;
    }
    await verify(password, stored);
  }

  /** The dummy's work left over after verifying `parsed`: PBKDF2 iterations, a whole dummy, or nothing. */
  function workBelowDummy(parsed: ParsedHash | null): number | 'dummy' | null {
    if (parsed === null) return 'dummy';
    if (algorithm === 'pbkdf2-sha512') {
      if (parsed.kind === 'argon2id') return null;
      return parsed.iterations < pbkdf2Iterations ? pbkdf2Iterations - parsed.iterations : null;
    }
    if (parsed.kind !== 'argon2id') return 'dummy';
    return parsed.memoryCost * parsed.timeCost < argonCost.memoryCost * argonCost.timeCost ? 'dummy' : null;
  }

  async function verifyAtDummyCost(password: string, stored: string): Promise<boolean> {
    const matches = await verify(password, stored);
    const missing = workBelowDummy(parseStoredHash(stored));
    if (missing === 'dummy') {
      await verifyDummy(password);
    } else if (missing !== null) {
      await pbkdf2(typeof password === 'string' ? password : '', PADDING_SALT, missing, PBKDF2_KEY_BYTES, 'sha512').catch(() => undefined);
    }
    return matches;
  }

  return { hash, verify, needsRehash, verifyDummy, verifyAtDummyCost };
}
