/**
 * A sign-in the source accepted but that ends without a session must undo what the source kept:
 * with Tableau, a live token that would otherwise stay valid for 240 minutes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { startTableauFake, type TableauFake } from '../../../tests/support/tableau-fake.js';
import { createTableauAuthenticator } from '../authenticators/tableau.js';
import { createLoginRateLimiter, type LoginRateLimiter } from '../security/login-rate-limiter.js';
import { AppError } from '../errors.js';
import { createLoginService } from './login.js';
import { NO_PAYLOAD_GROUPS } from './group-selection.js';

const SITE = { contentUrl: 'finance', id: '9a8b7c6d-0000-4000-8000-00000000beef' };
const logger = pino({ level: 'silent' });
const rules = { ip: { points: 100, durationSeconds: 60 }, user: { points: 100, durationSeconds: 60 }, userIp: { points: 100, durationSeconds: 60 } };

let fake: TableauFake;
beforeAll(async () => {
  fake = await startTableauFake({ site: SITE, users: [{ name: 'ada', password: 'tableau pass 1', siteRole: 'Creator', groups: ['All Users'] }] });
});
afterAll(async () => {
  await fake.close();
});

type Sessions = Parameters<typeof createLoginService>[0]['sessions'];
const storingNothing: Sessions = { open: async () => undefined, recordEvent: async () => undefined, end: async () => false };

function service(rateLimiter: LoginRateLimiter, sessions: Sessions = storingNothing) {
  const tableau = createTableauAuthenticator({ url: fake.url, site: SITE.contentUrl, apiVersion: '3.19', timeoutMs: 2000, logger, sealCredentials: () => 'sealed' });
  return createLoginService({
    authenticators: [tableau],
    rateLimiter,
    session: { secret: 'x'.repeat(48), ttlSeconds: 3600, groupSelection: () => ({ policyGroups: new Set<string>(), payload: NO_PAYLOAD_GROUPS }) },
    logger,
    now: () => 1_800_000_000_000,
    storeReady: () => true,
    sessions,
  });
}

describe('login service: a source success that does not become a session', () => {
  test('a limiter whose store fails after the Tableau sign-in: the error propagates and the Tableau token is signed out', async () => {
    const real = createLoginRateLimiter(rules);
    const storeDown: LoginRateLimiter = { ...real, recordSuccess: () => Promise.reject(new Error('limiter store unreachable')) };
    await expect(service(storeDown).attempt({ username: 'ada', password: 'tableau pass 1', ip: '192.0.2.7', requestId: 'r1' })).rejects.toThrow('limiter store unreachable');
    const token = fake.issuedTokens().at(-1)!;
    expect(fake.signedOutTokens()).toContain(token);
    expect(fake.isLive(token)).toBe(false);
  });

  test('a session row that cannot be written: 503, and the Tableau token is signed out', async () => {
    const failing: Sessions = {
      ...storingNothing,
      open: () => Promise.reject(new AppError('ERR_STORE_UNAVAILABLE', 503, 'Sign-in is temporarily unavailable.')),
    };
    const attempt = service(createLoginRateLimiter(rules), failing).attempt({ username: 'ada', password: 'tableau pass 1', ip: '192.0.2.7', requestId: 'r3' });
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE', status: 503 });
    const token = fake.issuedTokens().at(-1)!;
    expect(fake.signedOutTokens()).toContain(token);
  });

  test('a success hands the caller a discard that signs the kept Tableau token out', async () => {
    const result = await service(createLoginRateLimiter(rules)).attempt({ username: 'ada', password: 'tableau pass 1', ip: '192.0.2.7', requestId: 'r2' });
    if (result.kind !== 'success') throw new Error('expected success');
    const token = fake.issuedTokens().at(-1)!;
    expect(fake.isLive(token)).toBe(true);
    await result.discard();
    expect(fake.isLive(token)).toBe(false);
  });
});
