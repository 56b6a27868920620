import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import type { AuthOutcome, PasswordAuthenticator } from '../authenticators/types.js';
import { AppError } from '../errors.js';
import { createLoginRateLimiter } from '../security/login-rate-limiter.js';
import { createLoginService } from './login.js';
import { NO_PAYLOAD_GROUPS } from './group-selection.js';

const HIGH = { points: 100_000, durationSeconds: 60 };

/** A password source that answers `answer` and records the passwords it was asked with. */
function source(id: string, answer: () => AuthOutcome): PasswordAuthenticator & { passwords: string[]; usernames: string[] } {
  const passwords: string[] = [];
  const usernames: string[] = [];
  return {
    id,
    passwords,
    usernames,
    async authenticate({ username, password }) {
      usernames.push(username);
      passwords.push(password);
      return answer();
    },
  };
}

function service(authenticators: PasswordAuthenticator[]) {
  return createLoginService({
    authenticators,
    rateLimiter: createLoginRateLimiter({ ip: HIGH, user: HIGH, userIp: HIGH }),
    session: { secret: 'x'.repeat(48), ttlSeconds: 3600, groupSelection: () => ({ policyGroups: new Set<string>(), payload: NO_PAYLOAD_GROUPS }) },
    logger: pino({ level: 'silent' }),
    now: () => 1_800_000_000_000,
    storeReady: () => true,
    sessions: { open: async () => undefined, recordEvent: async () => undefined, end: async () => false },
  });
}

const attempt = (username: string) => ({ username, password: 'pw', ip: '192.0.2.1', requestId: 'r' });
const identity = { sub: 't1', username: 'kirk', groups: [], src: 'tableau' };

// Issue 8: a wrong local password stopped at the local store while an unknown username went on to
// Tableau, so status and timing told which local accounts exist.
describe('login service: the chain of password sources', () => {
  it('asks the next source with the typed password after an unknown local username', async () => {
    const tableau = source('tableau', () => ({ kind: 'invalid' }));
    expect(await service([source('local', () => ({ kind: 'not-found' })), tableau]).attempt(attempt('kirk'))).toEqual({ kind: 'failure', reason: 'invalid' });
    expect(tableau.passwords).toEqual(['pw']);
  });

  it.each<[string, AuthOutcome['kind']]>([
    ['a wrong local password', 'invalid'],
    ['a disabled local user', 'disabled'],
  ])('still asks the next source after %s, with a random decoy user and password instead of the typed ones', async (_name, localKind) => {
    const tableau = source('tableau', () => ({ kind: 'invalid' }));
    expect(await service([source('local', () => ({ kind: localKind }) as AuthOutcome), tableau]).attempt(attempt('kirk'))).toEqual({
      kind: 'failure',
      reason: localKind,
    });
    expect(tableau.passwords).toHaveLength(1);
    expect(tableau.passwords[0]).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // Not the typed name: decoy failures must not count toward the source's own lockout of a real
    // account of that name (Tableau logs and may lock failed sign-ins).
    expect(tableau.usernames).toHaveLength(1);
    expect(tableau.usernames[0]).not.toBe('kirk');
    expect(tableau.usernames[0]).toMatch(/^decoy-[A-Za-z0-9_-]{22}$/);
  });

  it('answers the same 503 for a wrong local password and an unknown username while the next source is down', async () => {
    const down = (): AuthOutcome => {
      throw new AppError('ERR_IDP_UNAVAILABLE', 503, 'Tableau is not reachable right now. Try again shortly.');
    };
    for (const localKind of ['invalid', 'not-found'] as const) {
      const local = source('local', () => ({ kind: localKind }));
      await expect(service([local, source('tableau', down)]).attempt(attempt('kirk'))).rejects.toMatchObject({ status: 503, code: 'ERR_IDP_UNAVAILABLE' });
    }
  });

  it('keeps shadowing: a later source that would accept is never given the chance to sign in a name an earlier one knows', async () => {
    const accepting = source('tableau', () => ({ kind: 'success', identity }));
    const result = await service([source('local', () => ({ kind: 'invalid' })), accepting]).attempt(attempt('kirk'));
    expect(result).toEqual({ kind: 'failure', reason: 'invalid' });
    expect(accepting.passwords).not.toContain('pw');
  });

  it('signs in with a later source for a name no earlier source knows', async () => {
    const result = await service([source('local', () => ({ kind: 'not-found' })), source('tableau', () => ({ kind: 'success', identity }))]).attempt(
      attempt('kirk'),
    );
    expect(result).toMatchObject({ kind: 'success', claims: { src: 'tableau' } });
  });
});

describe('login service: rate-limit hits in the audit trail', () => {
  it('writes one rate_limited row per limited client per minute, not one per refused attempt', async () => {
    const recorded: Array<{ event: string; reason?: string | null; clientIp?: string | null }> = [];
    let now = 1_800_000_000_000;
    const limited = createLoginService({
      authenticators: [source('local', () => ({ kind: 'invalid' }))],
      rateLimiter: createLoginRateLimiter({ ip: { points: 1, durationSeconds: 3600 }, user: HIGH, userIp: HIGH }),
      session: { secret: 'x'.repeat(48), ttlSeconds: 3600, groupSelection: () => ({ policyGroups: new Set<string>(), payload: NO_PAYLOAD_GROUPS }) },
      logger: pino({ level: 'silent' }),
      now: () => now,
      storeReady: () => true,
      sessions: { open: async () => undefined, recordEvent: async (e) => void recorded.push(e), end: async () => false },
    });
    await limited.attempt(attempt('kirk'));
    for (let i = 0; i < 20; i++) await expect(limited.attempt(attempt(`user${i}`))).rejects.toMatchObject({ code: 'ERR_RATE_LIMITED' });
    expect(recorded.filter((e) => e.event === 'rate_limited')).toEqual([expect.objectContaining({ reason: 'rate-limited-ip', clientIp: '192.0.2.1' })]);
    now += 61_000;
    await expect(limited.attempt(attempt('kirk'))).rejects.toMatchObject({ code: 'ERR_RATE_LIMITED' });
    expect(recorded.filter((e) => e.event === 'rate_limited')).toHaveLength(2);
  });
});
