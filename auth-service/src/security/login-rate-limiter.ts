/**
 * Brute-force limits for POST /login, in process memory (one auth service instance; several
 * instances would each keep their own counts). Three fixed windows:
 * - per client IP: every attempt counts, so one address cannot spray many usernames;
 * - per username: failures only, so a botnet cannot hammer one account; the window is short
 *   (config caps it at an hour), because a blocked username is also a locked-out real user;
 * - per (username, IP): failures only, tighter; a successful login clears it, so a user who
 *   mistyped a few times is not penalised once they get it right.
 * All checks run before any password hashing, so a blocked attempt costs almost nothing.
 */
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitRule } from '../config.js';

export type RateLimitScope = 'ip' | 'user' | 'user-ip';

export type RateLimitDecision = { allowed: true } | { allowed: false; scope: RateLimitScope; retryAfterSeconds: number };

export interface LoginRateLimiter {
  /** Counts one attempt from `ip` and checks the username limits, without counting a failure yet. */
  admit(username: string, ip: string): Promise<RateLimitDecision>;
  /** Records a failed attempt (wrong password, unknown or disabled user). */
  recordFailure(username: string, ip: string): Promise<void>;
  /** Records a success: clears that (username, IP) pair's failures. */
  recordSuccess(username: string, ip: string): Promise<void>;
}

/** Usernames match case-insensitively in the store, so they must in the limits too. */
function userKey(username: string): string {
  return username.toLowerCase();
}

function pairKey(username: string, ip: string): string {
  return JSON.stringify([userKey(username), ip]);
}

function retryAfter(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

function isRateLimiterRes(value: unknown): value is RateLimiterRes {
  return typeof value === 'object' && value !== null && 'msBeforeNext' in value && 'consumedPoints' in value;
}

export function createLoginRateLimiter(rules: { ip: RateLimitRule; user: RateLimitRule; userIp: RateLimitRule }): LoginRateLimiter {
  const byIp = new RateLimiterMemory({ keyPrefix: 'login-ip', points: rules.ip.points, duration: rules.ip.durationSeconds });
  const byUser = new RateLimiterMemory({ keyPrefix: 'login-user', points: rules.user.points, duration: rules.user.durationSeconds });
  const byPair = new RateLimiterMemory({ keyPrefix: 'login-pair', points: rules.userIp.points, duration: rules.userIp.durationSeconds });

  /** Seconds until `key` may fail again, or 0 while it still has failures left. */
  async function blockedFor(limiter: RateLimiterMemory, points: number, key: string): Promise<number> {
    const res = await limiter.get(key);
    if (res === null || res.msBeforeNext <= 0 || res.consumedPoints < points) return 0;
    return retryAfter(res);
  }

  return {
    async admit(username, ip) {
      try {
        await byIp.consume(ip);
      } catch (rejection) {
        // RateLimiterMemory rejects with a RateLimiterRes when the limit is hit; anything else is a bug.
        if (!isRateLimiterRes(rejection)) throw rejection;
        return { allowed: false, scope: 'ip', retryAfterSeconds: retryAfter(rejection) };
      }
      const pairWait = await blockedFor(byPair, rules.userIp.points, pairKey(username, ip));
      if (pairWait > 0) return { allowed: false, scope: 'user-ip', retryAfterSeconds: pairWait };
      const userWait = await blockedFor(byUser, rules.user.points, userKey(username));
      if (userWait > 0) return { allowed: false, scope: 'user', retryAfterSeconds: userWait };
      return { allowed: true };
    },

    async recordFailure(username, ip) {
      await Promise.all([byUser.penalty(userKey(username)), byPair.penalty(pairKey(username, ip))]);
    },

    async recordSuccess(username, ip) {
      await byPair.delete(pairKey(username, ip));
    },
  };
}
