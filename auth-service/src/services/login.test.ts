import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import type { AuthOutcome, PasswordAuthenticator } from '../authenticators/types.js';
import { AppError } from '../errors.js';
import { createLoginRateLimiter } from '../security/login-rate-limiter.js';
import { createLoginService } from './login.js';

const HIGH = { points: 100_000, durationSeconds: 60 };

function source(id: string, answer: () => AuthOutcome): PasswordAuthenticator & { asked: string[] } {
  const asked: string[] = [];
  return {
    id,
    asked,
    async authenticate({ username }) {
      asked.push(username);
      return answer();
    },
  };
}

function service(authenticators: PasswordAuthenticator[]) {
  return createLoginService({
    authenticators,
    rateLimiter: createLoginRateLimiter({ ip: HIGH, user: HIGH, userIp: HIGH }),
    session: { secret: 'x'.repeat(48), ttlSeconds: 3600 },
    logger: pino({ level: 'silent' }),
    now: () => 1_800_000_000_000,
    storeReady: () => true,
  });
}

const attempt = (username: string) => ({ username, password: 'pw', ip: '192.0.2.1', requestId: 'r' });
const identity = { sub: 't1', username: 'kirk', groups: [], src: 'tableau' };

// Issue 8: a wrong local password stopped at the local store while an unknown username went on to
// Tableau, so status and timing told which local accounts exist.
describe('login service: the chain of password sources', () => {
  it.each<[string, AuthOutcome['kind']]>([
    ['an unknown local username', 'not-found'],
    ['a wrong local password', 'invalid'],
  ])('asks the next source after %s', async (_name, localKind) => {
    const local = source('local', () => ({ kind: localKind }) as AuthOutcome);
    const tableau = source('tableau', () => ({ kind: 'invalid' }));
    expect(await service([local, tableau]).attempt(attempt('kirk'))).toEqual({ kind: 'failure', reason: 'invalid' });
    expect(tableau.asked).toEqual(['kirk']);
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

  it('signs in with the next source when it accepts the password (its own identity, not the local one)', async () => {
    const local = source('local', () => ({ kind: 'invalid' }));
    const result = await service([local, source('tableau', () => ({ kind: 'success', identity }))]).attempt(attempt('kirk'));
    expect(result).toMatchObject({ kind: 'success', claims: { src: 'tableau' } });
  });

  it('stops at a disabled local user whose password was right', async () => {
    const tableau = source('tableau', () => ({ kind: 'success', identity }));
    const result = await service([source('local', () => ({ kind: 'disabled' })), tableau]).attempt(attempt('kirk'));
    expect(result).toEqual({ kind: 'failure', reason: 'disabled' });
    expect(tableau.asked).toEqual([]);
  });

  it('logs the first source that knew the user as the reason', async () => {
    const result = await service([source('local', () => ({ kind: 'invalid' })), source('tableau', () => ({ kind: 'not-found' }))]).attempt(attempt('kirk'));
    expect(result).toEqual({ kind: 'failure', reason: 'invalid' });
  });
});
