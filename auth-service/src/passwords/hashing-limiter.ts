import { AppError } from '../errors.js';
import type { PasswordHasher } from './password-hasher.js';

/** Shown when every hashing slot and every queue place is taken (a sign-in storm). */
export const HASHING_BUSY_MESSAGE = 'Too many people are signing in right now. Please try again in a few seconds.';
/** Retry-After for a refused sign-in: a queue of hashes drains in well under this at full cost. */
export const HASHING_BUSY_RETRY_AFTER_SECONDS = 2;

export interface HashingLimits {
  /** Password hashes computed at once (LOGIN_HASH_CONCURRENCY). */
  concurrency: number;
  /** Hashes waiting for a slot (LOGIN_HASH_QUEUE); one more is refused with ERR_LOGIN_BUSY. */
  queue: number;
}

export interface HashingLimiter {
  /**
   * Runs `work` once fewer than `concurrency` others run, in arrival order. Throws AppError
   * ERR_LOGIN_BUSY (503, Retry-After) at once, without running `work`, when `queue` others already
   * wait. The slot is released when `work` settles, whether it resolves or rejects.
   */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** Running and waiting right now (for tests and metrics). */
  load(): { running: number; waiting: number };
}

/**
 * A counting semaphore with a bounded FIFO queue. Its only purpose is to bound what a sign-in storm
 * can take: at most `concurrency` PBKDF2/argon2 computations hold CPU (and argon2's memory) at once,
 * at most `queue` requests (their sockets and closures) wait, and everything beyond is answered 503
 * immediately instead of piling up in libuv's thread pool, where it would delay every other
 * pool user (DNS, file reads) and grow memory without bound.
 * Not checked: fairness between clients (nginx's limit_req and the login rate limiter do that).
 */
export function createHashingLimiter(limits: HashingLimits): HashingLimiter {
  if (!Number.isSafeInteger(limits.concurrency) || limits.concurrency < 1) throw new Error('createHashingLimiter: concurrency must be an integer >= 1');
  if (!Number.isSafeInteger(limits.queue) || limits.queue < 0) throw new Error('createHashingLimiter: queue must be an integer >= 0');
  let running = 0;
  const waiting: Array<() => void> = [];

  const release = (): void => {
    const next = waiting.shift();
    // The slot passes straight to the next waiter, so `running` never drops below the cap while
    // anyone waits (a newcomer cannot overtake the queue).
    if (next) next();
    else running--;
  };

  return {
    async run<T>(work: () => Promise<T>): Promise<T> {
      if (running >= limits.concurrency) {
        if (waiting.length >= limits.queue) {
          throw new AppError('ERR_LOGIN_BUSY', 503, HASHING_BUSY_MESSAGE, { retryAfterSeconds: HASHING_BUSY_RETRY_AFTER_SECONDS });
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        running++;
      }
      try {
        return await work();
      } finally {
        release();
      }
    },
    load: () => ({ running, waiting: waiting.length }),
  };
}

/**
 * The same hasher, with every computation (hash, verify, the dummy and top-up verifications) going
 * through `limiter`. A refused one throws ERR_LOGIN_BUSY; `needsRehash` does no hashing and is not limited.
 */
export function limitPasswordHashing(hasher: PasswordHasher, limiter: HashingLimiter): PasswordHasher {
  return {
    hash: (password) => limiter.run(() => hasher.hash(password)),
    verify: (password, stored) => limiter.run(() => hasher.verify(password, stored)),
    needsRehash: (stored) => hasher.needsRehash(stored),
    verifyDummy: (password) => limiter.run(() => hasher.verifyDummy(password)),
    verifyAtDummyCost: (password, stored) => limiter.run(() => hasher.verifyAtDummyCost(password, stored)),
  };
}
