/**
 * What renewal asks a session's identity source (issue 9): the OIDC/Entra provider through the
 * session's refresh token, Tableau through the session's own Tableau token, a custom module through
 * its `refresh` hook. Local users are read from the store by renewal itself.
 *
 * These calls go over the network, so renewal makes them before it locks the session row.
 */
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import type { PasswordAuthenticator } from '../authenticators/types.js';
import { isAppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import type { SessionRecord } from '../storage/sessions-repo.js';
import { openIdpRefresh, sealIdpRefresh } from './idp-refresh.js';
import type { OidcService } from './oidc.js';
import { sessionSourceOf } from './session-identity.js';
import { fetchCurrentTableauSession, type TableauCallOptions, type TableauCredentials } from './tableau-token.js';

/** Why a source ended the session (kebab-case, as RenewalRefusal). */
export type SourceRefusal = 'idp-refresh-refused' | 'tableau-session-expired' | 'custom-refresh-refused';

/**
 * `ok`: the source still vouches for the session, with the full group list it names now (undefined:
 * keep the stored one) and, for OIDC, the refresh token to store, sealed under the active secret.
 * `refused`: the session ends. `unavailable`: no answer now; no token, the session is kept.
 */
export type SourceCheck =
  | { kind: 'ok'; groups?: string[]; idpRefresh?: string }
  | { kind: 'refused'; reason: SourceRefusal }
  | { kind: 'unavailable'; reason: 'idp-unavailable' | 'tableau-unavailable' };

export interface SourceRecheckDeps {
  /** OIDC / Entra sign-in; null or absent when off. */
  oidc?: Pick<OidcService, 'refresh' | 'flavour'> | null;
  /** Tableau's server root and TABLEAU_TIMEOUT_MS; null or absent when Tableau is not configured. */
  tableau?: TableauCallOptions | null;
  /** The password sources; a custom one (`custom:<id>`) with a `refresh` hook is asked. */
  authenticators?: PasswordAuthenticator[];
  logger: Logger;
}

export interface SourceRecheckInput {
  claims: SessionClaims;
  /** The session row as read before the lock. */
  row: SessionRecord;
  /** The session's opened Tableau credentials, when it has some. */
  tableau: TableauCredentials | undefined;
  /** The active JWT secret first, then the previous ones still in their grace period. */
  secrets: string[];
  requestId: string;
}

export type SourceRecheck = (input: SourceRecheckInput) => Promise<SourceCheck>;

const OK: SourceCheck = { kind: 'ok' };

/**
 * Builds the re-check. Guaranteed, per source:
 * - OIDC/Entra with a stored refresh token: redeemed at the provider (OIDC_TIMEOUT_MS); an error
 *   answer, a changed subject or a refresh token that no live secret opens is `idp-refresh-refused`;
 *   the provider, its keys or Graph unreachable is `idp-unavailable`. Groups as at sign-in.
 * - Tableau: Get Current Server Session with the session's token (TABLEAU_TIMEOUT_MS); 401, or
 *   another user's session, is `tableau-session-expired`; anything else but 2xx, or no answer, is
 *   `tableau-unavailable`.
 * - custom module with a `refresh` hook: `{kind:'refused'}` is `custom-refresh-refused`; a throw, a
 *   malformed answer or a timeout is `idp-unavailable`.
 * Not checked: OIDC sessions without a refresh token, Tableau sessions while Tableau is not
 * configured, custom modules without the hook (all `ok` with the stored groups).
 */
export function createSourceRecheck(deps: SourceRecheckDeps): SourceRecheck {
  const { logger } = deps;
  const unavailable = (reason: 'idp-unavailable' | 'tableau-unavailable', input: SourceRecheckInput, err: unknown): SourceCheck => {
    logger.error({ event: 'auth_error', what: 'renewal', reason, src: input.claims.src, sid: input.claims.sid, request_id: input.requestId, err: errorSummary(err) });
    return { kind: 'unavailable', reason };
  };

  async function recheckOidc(input: SourceRecheckInput): Promise<SourceCheck> {
    const { claims, row } = input;
    if (row.idpRefresh === null || !deps.oidc || deps.oidc.flavour !== claims.src) return OK;
    const refreshToken = openIdpRefresh(row.idpRefresh, row.sid, input.secrets);
    // Sealed under a secret retired since: renewal seals it again each time, so the session was not
    // renewed for a whole grace period.
    if (refreshToken === null) return { kind: 'refused', reason: 'idp-refresh-refused' };
    let result: Awaited<ReturnType<OidcService['refresh']>>;
    try {
      result = await deps.oidc.refresh(refreshToken, claims.sub, input.requestId);
    } catch (err) {
      // Logged by the OIDC service when it is an AppError.
      if (isAppError(err)) return { kind: 'unavailable', reason: 'idp-unavailable' };
      return unavailable('idp-unavailable', input, err);
    }
    if (result.kind === 'refused') return { kind: 'refused', reason: 'idp-refresh-refused' };
    const sealed = sealIdpRefresh(result.refreshToken, row.sid, input.secrets[0]!);
    return result.groups === undefined ? { kind: 'ok', idpRefresh: sealed } : { kind: 'ok', groups: result.groups, idpRefresh: sealed };
  }

  async function recheckTableau(input: SourceRecheckInput): Promise<SourceCheck> {
    if (input.tableau === undefined || !deps.tableau) return OK;
    let answer: Awaited<ReturnType<typeof fetchCurrentTableauSession>>;
    try {
      answer = await fetchCurrentTableauSession(input.tableau, deps.tableau);
    } catch (err) {
      return unavailable('tableau-unavailable', input, err);
    }
    if (answer.status === 401) return { kind: 'refused', reason: 'tableau-session-expired' };
    if (answer.status < 200 || answer.status >= 300) return unavailable('tableau-unavailable', input, new Error(`Tableau answered ${answer.status}`));
    // The token now names another user: not this session any more.
    if (answer.userId !== null && answer.userId !== input.tableau.userId) return { kind: 'refused', reason: 'tableau-session-expired' };
    return OK;
  }

  async function recheckCustom(input: SourceRecheckInput): Promise<SourceCheck> {
    const { claims, row } = input;
    const source = deps.authenticators?.find((a) => a.id === claims.src);
    if (source?.refresh === undefined) return OK;
    const identity = { sub: claims.sub, username: claims.username, groups: [...row.groups], src: claims.src, ...(claims.name ? { name: claims.name } : {}), ...(claims.email ? { email: claims.email } : {}) };
    let outcome: Awaited<ReturnType<NonNullable<PasswordAuthenticator['refresh']>>>;
    try {
      outcome = await source.refresh(identity, { requestId: input.requestId });
    } catch (err) {
      return unavailable('idp-unavailable', input, err);
    }
    return outcome.kind === 'refused' ? { kind: 'refused', reason: 'custom-refresh-refused' } : { kind: 'ok', groups: outcome.identity.groups };
  }

  return (input) => {
    const source = sessionSourceOf(input.claims.src);
    if (source === 'oidc') return recheckOidc(input);
    if (source === 'tableau') return recheckTableau(input);
    if (source === 'custom') return recheckCustom(input);
    return Promise.resolve(OK);
  };
}
