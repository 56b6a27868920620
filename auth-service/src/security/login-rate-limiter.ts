/**
 * Brute-force limits for POST /login, in process memory (one auth service instance; several
 * instances would each keep their own counts). A "client" is one IPv4 address or one IPv6 /64 (a
 * single host usually owns a whole /64, so per-address counting would give it 2^64 buckets).
 *
 * - per client: every attempt counts, so one client cannot spray many usernames;
 * - per (username, client): failures only, the tight limit; a success clears it, so a user who
 *   mistyped a few times is not penalised once they get it right;
 * - per username: failures from all clients, loose. Past its threshold the username is in backoff:
 *   a client that has already failed for it must wait 1 s, 2 s, 4 s … (capped at 60 s) after the
 *   username's latest failure, which slows a guess spread over many clients. A client that has not
 *   failed for the username is never refused by this limit, so nobody can lock the real user out by
 *   guessing (issue 8: five wrong passwords used to refuse the right one, from anywhere, for 5 min).
 * Usernames count under usernameKey, the key the users table is looked up by.
 * All checks run before any password hashing, so a blocked attempt costs almost nothing.
 * Not guaranteed: exact counts under concurrent attempts (two admitted at once may both fail).
 */
import net from 'node:net';
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitRule } from '../config.js';
import { usernameKey } from './username-key.js';

export type RateLimitScope = 'ip' | 'user' | 'user-ip';

export type RateLimitDecision = { allowed: true } | { allowed: false; scope: RateLimitScope; retryAfterSeconds: number };

export interface LoginRateLimiter {
  /** Counts one attempt from `ip` and checks the username limits, without counting a failure yet. */
  admit(username: string, ip: string): Promise<RateLimitDecision>;
  /** Records a failed attempt (wrong password, unknown or disabled user). */
  recordFailure(username: string, ip: string): Promise<void>;
  /** Records a success: clears that (username, client) pair's failures. */
  recordSuccess(username: string, ip: string): Promise<void>;
}

/** The longest a client that failed for a username waits while the username is in backoff. */
export const USER_BACKOFF_MAX_SECONDS = 60;
/** Usernames with recent failures that are remembered at once; the oldest are forgotten first. */
const MAX_TRACKED_USERS = 100_000;

/** Eight 16-bit groups of an IPv6 address, or null if `ip` is not one. */
function ipv6Groups(ip: string): number[] | null {
  const address = ip.replace(/%.*$/, '');
  if (net.isIPv6(address) === false) return null;
  let text = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** The rate-limit bucket of a client address: IPv4 as is, IPv6 as its /64 (`2001:db8:1:2::/64`). */
export function clientBucket(ip: string): string {
  const groups = ipv6Groups(ip);
  if (groups === null) return ip;
  return groups.slice(0, 4).map((g) => g.toString(16)).join(':') + '::/64';
}

function pairKey(user: string, ip: string): string {
  return JSON.stringify([user, clientBucket(ip)]);
}

function retryAfter(res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
}

function isRateLimiterRes(value: unknown): value is RateLimiterRes {
  return typeof value === 'object' && value !== null && 'msBeforeNext' in value && 'consumedPoints' in value;
}

interface UserFailures {
  count: number;
  lastMs: number;
}

/**
 * `rules.user`: `points` failures of one username (all clients) before its backoff starts; failures
 * are forgotten `durationSeconds` after the username's latest one. `now` is for tests (milliseconds).
 */
export function createLoginRateLimiter(
  rules: { ip: RateLimitRule; user: RateLimitRule; userIp: RateLimitRule },
  now: () => number = Date.now,
): LoginRateLimiter {
  const byIp = new RateLimiterMemory({ keyPrefix: 'login-ip', points: rules.ip.points, duration: rules.ip.durationSeconds });
  const byPair = new RateLimiterMemory({ keyPrefix: 'login-pair', points: rules.userIp.points, duration: rules.userIp.durationSeconds });
  const byUser = new Map<string, UserFailures>();
  const userMemoryMs = rules.user.durationSeconds * 1000;

  function userFailures(user: string): UserFailures | undefined {
    const entry = byUser.get(user);
    if (entry !== undefined && now() - entry.lastMs >= userMemoryMs) {
      byUser.delete(user);
      return undefined;
    }
    return entry;
  }

  /** Milliseconds a client that failed for this username still has to wait (0: none). */
  function userBackoffMs(user: string): number {
    const entry = userFailures(user);
    if (entry === undefined || entry.count < rules.user.points) return 0;
    const exponent = Math.min(entry.count - rules.user.points, 16);
    const waitMs = Math.min(USER_BACKOFF_MAX_SECONDS, 2 ** exponent) * 1000;
    return Math.max(0, entry.lastMs + waitMs - now());
  }

  function forgetOldUsers(): void {
    if (byUser.size < MAX_TRACKED_USERS) return;
    for (const [user, entry] of byUser) {
      if (now() - entry.lastMs >= userMemoryMs) byUser.delete(user);
    }
    // Still full: drop the entries touched longest ago (a Map iterates in insertion order).
    for (const user of byUser.keys()) {
      if (byUser.size < MAX_TRACKED_USERS) break;
      byUser.delete(user);
    }
  }

  return {
    async admit(username, ip) {
      try {
        await byIp.consume(clientBucket(ip));
      } catch (rejection) {
        // RateLimiterMemory rejects with a RateLimiterRes when the limit is hit; anything else is a bug.
        if (!isRateLimiterRes(rejection)) throw rejection;
        return { allowed: false, scope: 'ip', retryAfterSeconds: retryAfter(rejection) };
      }
      const user = usernameKey(username);
      const pair = await byPair.get(pairKey(user, ip));
      const pairFailures = pair === null || pair.msBeforeNext <= 0 ? 0 : pair.consumedPoints;
      if (pairFailures >= rules.userIp.points) return { allowed: false, scope: 'user-ip', retryAfterSeconds: retryAfter(pair!) };
      // A client that has not failed for this username goes through: that is the real user's way in.
      if (pairFailures === 0) return { allowed: true };
      const backoffMs = userBackoffMs(user);
      if (backoffMs > 0) return { allowed: false, scope: 'user', retryAfterSeconds: Math.max(1, Math.ceil(backoffMs / 1000)) };
      return { allowed: true };
    },

    async recordFailure(username, ip) {
      const user = usernameKey(username);
      const entry = userFailures(user);
      byUser.delete(user);
      forgetOldUsers();
      byUser.set(user, { count: (entry?.count ?? 0) + 1, lastMs: now() });
      await byPair.penalty(pairKey(user, ip));
    },

    async recordSuccess(username, ip) {
      await byPair.delete(pairKey(usernameKey(username), ip));
    },
  };
}
