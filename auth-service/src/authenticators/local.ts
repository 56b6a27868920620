import type { Logger } from 'pino';
import { errorSummary } from '../logger.js';
import type { PasswordHasher } from '../passwords/index.js';
import type { UserRecord, UsersRepo } from '../storage/users-repo.js';
import type { AuthOutcome, Identity, PasswordAuthenticator } from './types.js';

export const LOCAL_SOURCE = 'local';

export interface LocalAuthenticatorDeps {
  usersRepo: UsersRepo;
  hasher: PasswordHasher;
  logger: Logger;
}

function toIdentity(user: UserRecord): Identity {
  const identity: Identity = { sub: user.id, username: user.username, groups: [...user.groups], src: LOCAL_SOURCE };
  if (user.fullName) identity.name = user.fullName;
  if (user.email) {
    identity.email = user.email;
    // Admin-entered (users CLI), so the gateway vouches for it.
    identity.emailVerified = true;
  }
  return identity;
}

/**
 * Users from the PostgreSQL `users` table.
 *
 * Guaranteed: every outcome costs one password verification (an unknown user verifies against a
 * dummy hash; a disabled user's password is still checked), so timing does not tell them apart; a
 * disabled user is `disabled` only when the password was right, otherwise `invalid`; after a
 * successful login a hash written under an older policy (other algorithm or cost) is replaced,
 * and a failure to do so is logged, never fatal.
 * A stored hash cheaper than the dummy is topped up to the dummy's cost (verifyAtDummyCost).
 * Not guaranteed: identical timing when the store is slow, or when a stored hash costs more than the
 * dummy or uses another algorithm than the policy (until the user's next sign-in rehashes it).
 */
export function createLocalAuthenticator(deps: LocalAuthenticatorDeps): PasswordAuthenticator {
  const { usersRepo, hasher, logger } = deps;

  async function rehashIfNeeded(user: UserRecord, password: string, requestId: string): Promise<void> {
    if (!hasher.needsRehash(user.passwordHash)) return;
    try {
      await usersRepo.updatePasswordHash(user.id, await hasher.hash(password));
      logger.info({ event: 'password_rehashed', user: user.username, src: LOCAL_SOURCE, request_id: requestId }, 'password hash upgraded');
    } catch (err) {
      logger.warn(
        { event: 'password_rehash_failed', user: user.username, src: LOCAL_SOURCE, request_id: requestId, err: errorSummary(err) },
        'could not upgrade the password hash; the login still succeeds',
      );
    }
  }

  return {
    id: LOCAL_SOURCE,
    async authenticate({ username, password }, ctx): Promise<AuthOutcome> {
      const user = await usersRepo.findByUsername(username);
      if (user === null) {
        await hasher.verifyDummy(password);
        return { kind: 'not-found' };
      }
      // At least the dummy's cost: a hash imported at a lower cost must not answer faster than an
      // unknown user (issue 8).
      const matches = await hasher.verifyAtDummyCost(password, user.passwordHash);
      if (!matches) return { kind: 'invalid' };
      if (user.disabled) return { kind: 'disabled' };
      await rehashIfNeeded(user, password, ctx.requestId);
      return { kind: 'success', identity: toIdentity(user) };
    },
  };
}
