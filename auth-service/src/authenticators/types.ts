/**
 * The interface every identity source implements. Issue 3 has one (local PostgreSQL users);
 * Tableau, OIDC and custom sources come later and plug in here without touching the login flow.
 */

/** Who signed in, as the session token will carry it. */
export interface Identity {
  /** Stable id within the source (local users: the row uuid). */
  sub: string;
  username: string;
  name?: string;
  email?: string;
  /** The source vouches for `email` (signed as `email_verified`; see session-contract). */
  emailVerified?: boolean;
  groups: string[];
  /** Identity source id, e.g. "local"; becomes the `src` claim. */
  src: string;
  /** Further claims to sign into the token. Reserved claim names are ignored. */
  extraClaims?: Record<string, unknown>;
}

/**
 * Result of one attempt. `not-found`, `invalid` and `disabled` are all shown to the user as the same
 * generic failure; they differ only in the logs. Infrastructure failures are thrown (AppError), not
 * returned.
 */
export type AuthOutcome =
  | {
      kind: 'success';
      identity: Identity;
      /**
       * Undoes what the source kept open for this sign-in (Tableau: signs its session out) when no
       * session is issued after all (the cookie would be too big, the store failed, ...). Never throws.
       */
      discard?: () => Promise<void>;
    }
  | { kind: 'not-found' }
  | { kind: 'invalid' }
  | { kind: 'disabled' };

export interface AuthContext {
  requestId: string;
}

/**
 * What a source says about a live session at renewal: it still stands, with the identity as the
 * source now sees it (renewal applies its groups), or the source refuses it (the session ends).
 */
export type RefreshOutcome = { kind: 'success'; identity: Identity } | { kind: 'refused' };

/** A source that checks a username and password. */
export interface PasswordAuthenticator {
  /** Identity source id, e.g. "local". */
  id: string;
  /**
   * Must take about the same time for an unknown user as for a wrong password, and must not throw
   * for a wrong password. Throws AppError('ERR_STORE_UNAVAILABLE') when its store is unreachable.
   */
  authenticate(input: { username: string; password: string }, ctx: AuthContext): Promise<AuthOutcome>;
  /**
   * Optional: asked at each renewal of a session this source signed in, with the session's identity
   * (its groups the full list stored). Throws AppError (503) when the source cannot answer.
   */
  refresh?(identity: Identity, ctx: AuthContext): Promise<RefreshOutcome>;
}
