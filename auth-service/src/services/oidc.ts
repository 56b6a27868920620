/**
 * The OIDC authorization-code flow (PKCE, state, nonce) behind GET /login/oidc and the callback,
 * on openid-client. The routes around it only read cookies and render.
 */
import { compactVerify, createRemoteJWKSet, customFetch as joseCustomFetch, errors as joseErrors } from 'jose';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { fetchGraphGroups, GraphGroupsError, identityFromClaims, tooManyGroupsError } from '../authenticators/oidc.js';
import { AppError, isAppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import type { Identity } from '../authenticators/types.js';
import type { OidcConfig } from './oidc-config.js';
import { createStateSealer, OIDC_STATE_TTL_SECONDS, type OidcFlowState } from './oidc-state.js';
import { SessionTooLargeError } from './group-selection.js';
import type { GroupSelectionSource } from './group-selection-source.js';
import { sealIdpRefresh } from './idp-refresh.js';
import { issueSessionToken } from './session-token.js';

export type OidcFailureReason =
  | 'state-missing'
  | 'state-mismatch'
  | 'idp-error'
  | 'code-rejected'
  | 'issuer-mismatch'
  | 'audience-mismatch'
  | 'nonce-mismatch'
  | 'token-expired'
  | 'token-invalid'
  | 'token-key-unknown'
  | 'token-signature-invalid'
  | 'claims-missing'
  | 'too-many-groups';

export const OIDC_FAILURE_MESSAGE = 'Sign-in with your identity provider did not complete. Please start again.';

export interface OidcServiceDeps {
  config: OidcConfig;
  /** Plain-http issuers allowed (ALLOW_INSECURE_HTTP_IDP=true, tests only). */
  allowInsecureHttp: boolean;
  /** `groupSelection` is asked at each sign-in, so a reloaded policy applies to the next one. */
  session: { secret: string; ttlSeconds: number; groupSelection: GroupSelectionSource };
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** For the provider and Graph requests; default: global fetch. */
  fetch?: typeof fetch;
}

export interface OidcStart {
  /** The provider's authorization URL. */
  location: string;
  /** The sealed flow state for the gw_oidc cookie. */
  stateCookie: string;
}

export interface OidcCallbackInput {
  /** Path and query of the callback request, as received. */
  pathAndQuery: string;
  stateCookie: string | undefined;
  ip: string;
  requestId: string;
}

export interface OidcSuccess {
  token: string;
  claims: SessionClaims;
  returnPath: string;
  /** Every group of the user (the token carries a selection): the server-side session keeps them. */
  groups: string[];
  /** The provider's refresh token sealed for this session (services/idp-refresh.ts), or null when it gave none. */
  idpRefresh: string | null;
}

/**
 * What the provider said to a refresh (renewal): the grant still works, with the groups its new ID
 * token names (undefined when it sent no ID token) and the refresh token to keep (the rotated one,
 * or the same); or it refused the grant.
 */
/** OAuth error codes (RFC 6749 5.2) that blame the client, i.e. the gateway's own registration. */
const GATEWAY_SIDE_OAUTH_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_request']);

export type OidcRefreshResult = { kind: 'ok'; groups: string[] | undefined; refreshToken: string } | { kind: 'refused'; reason: string };

export interface OidcService {
  readonly displayName: string;
  readonly redirectPath: string;
  /** The configured issuer identifier (discovery checks that the metadata names the same). */
  readonly issuer: string;
  readonly flavour: OidcConfig['flavour'];
  /** Throws AppError('ERR_IDP_UNAVAILABLE', 503) when discovery fails or times out. */
  start(returnPath: string, requestId: string): Promise<OidcStart>;
  /**
   * Finishes the flow and signs a session. Throws AppError ERR_INVALID_CREDENTIALS (401) for any
   * rejected response (bad state, IdP error, replayed code, iss/aud/nonce mismatch, expired or
   * unsigned ID token, a signature that the provider's JWKS does not confirm), 403 for more groups
   * than OIDC_MAX_GROUPS, ERR_IDP_UNAVAILABLE (503) when the provider, its JWKS or Graph is
   * unreachable, answers 5xx, or Graph's paging does not end.
   * Every outcome is logged as auth_success, auth_failure or auth_error.
   */
  finish(input: OidcCallbackInput): Promise<OidcSuccess>;
  /**
   * Redeems a session's refresh token (renewal). Guaranteed: `refused` for an error answer of the
   * provider about the grant (invalid_grant: revoked, expired, account disabled; interaction_required:
   * the user must sign in again, e.g. for MFA; ...), but 503 ERR_IDP_UNAVAILABLE for one that
   * blames the gateway's own registration (invalid_client, unauthorized_client,
   * unsupported_grant_type, invalid_request: an expired client secret must not end every
   * session); `refused` also for a new ID token that fails
   * the sign-in checks (issuer, audience, signature) or names another subject than `expectedSub`,
   * or more groups than OIDC_MAX_GROUPS; groups are read as at sign-in (ID token claim, Graph on
   * overage). Throws AppError('ERR_IDP_UNAVAILABLE', 503) when the provider, its JWKS or Graph is
   * unreachable, slow (OIDC_TIMEOUT_MS) or answers 5xx/429. Not checked: anything when the
   * provider returns no ID token (groups are then undefined).
   */
  refresh(refreshToken: string, expectedSub: string, requestId: string): Promise<OidcRefreshResult>;
  /** RP-initiated logout URL, or null when the provider has no end_session_endpoint or is down. */
  endSessionUrl(postLogoutRedirectUri: string): Promise<string | null>;
}

/**
 * Longest session token this flow hands out. Browsers keep cookies up to 4096 bytes, and nginx
 * reads the callback's response headers (Set-Cookie plus the security headers) into its default
 * 4 KiB proxy buffer; a longer token would be a 502 or a cookie the browser silently drops.
 */
export const MAX_SESSION_TOKEN_BYTES = 3400;

export const IDP_UNAVAILABLE_MESSAGE = 'The identity provider is not reachable right now. Please try again in a few minutes.';

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let current: unknown = err;
  for (let i = 0; i < 6 && current !== undefined && current !== null; i++) {
    out.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * Network failures and timeouts (fetch's TypeError "fetch failed", AbortSignal.timeout's
 * TimeoutError, undici's socket codes). Compared by name and code, not instanceof: errors from
 * Node's built-in fetch may come from another realm (jest's VM contexts, for one).
 */
function isUnreachable(err: unknown): boolean {
  return causes(err).some((e) => {
    if (typeof e !== 'object' || e === null) return false;
    const { name, message, code } = e as { name?: unknown; message?: unknown; code?: unknown };
    return name === 'TimeoutError' || name === 'AbortError' || (name === 'TypeError' && /fetch failed/i.test(String(message))) || /ECONNREFUSED|ECONNRESET|ENOTFOUND|UND_ERR/.test(String(code ?? ''));
  });
}

/** Maps an openid-client error to a reason for the log; null when it is not a rejection. */
export function classifyOidcError(err: unknown): OidcFailureReason | null {
  if (err instanceof client.AuthorizationResponseError) return 'idp-error';
  if (err instanceof client.ResponseBodyError) return 'code-rejected';
  if (!(err instanceof client.ClientError)) return null;
  // openid-client wraps oauth4webapi's error; the compared claim and the message are further down.
  const chain = causes(err);
  const claim = chain.map((e) => (typeof e === 'object' && e !== null ? (e as { claim?: unknown }).claim : undefined)).find((c) => c !== undefined);
  const messages = chain.map((e) => (e instanceof Error ? e.message : '')).join(' | ');
  switch (err.code) {
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      if (claim === 'iss') return 'issuer-mismatch';
      if (claim === 'aud' || claim === 'azp') return 'audience-mismatch';
      if (claim === 'nonce') return 'nonce-mismatch';
      return 'token-invalid';
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return 'token-expired';
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
    case 'OAUTH_INVALID_RESPONSE':
      if (/"state"/.test(messages)) return 'state-mismatch';
      if (/"iss"|issuer/.test(messages)) return 'issuer-mismatch';
      return 'token-invalid';
    default:
      return 'token-invalid';
  }
}

/** Asymmetric JWS algorithms only: an HS* ID token would be "signed" with the client secret. */
const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** HTTP status of a provider response somewhere in an openid-client error's cause chain. */
function providerStatus(err: unknown): number | undefined {
  for (const e of causes(err)) {
    const status = typeof e === 'object' && e !== null ? (e as { status?: unknown }).status : undefined;
    if (typeof status === 'number') return status;
  }
  return undefined;
}

/** Provider-side trouble rather than a rejection: retrying later can help. */
function isProviderDown(err: unknown): boolean {
  const status = providerStatus(err);
  return isUnreachable(err) || (status !== undefined && (status >= 500 || status === 429));
}

/** `?error=` values with which the authorization endpoint says it is down (RFC 6749 4.1.2.1). */
const IDP_DOWN_ERRORS = new Set(['server_error', 'temporarily_unavailable']);

/** Discovery metadata and the key set it names, as fetched at `fetchedAt` (ms). */
interface ProviderState {
  configuration: client.Configuration;
  jwks: ReturnType<typeof createRemoteJWKSet>;
  fetchedAt: number;
}

export function createOidcService(deps: OidcServiceDeps): OidcService {
  const { config, logger } = deps;
  const sealer = createStateSealer(deps.session.secret);
  const src = config.flavour;
  const ttlMs = config.metadataTtlSeconds * 1000;
  let current: ProviderState | undefined;
  let pending: Promise<ProviderState> | undefined;

  async function load(): Promise<ProviderState> {
    const insecure = deps.allowInsecureHttp && config.issuer.startsWith('http:');
    const options: client.DiscoveryRequestOptions = { timeout: config.timeoutMs / 1000, execute: insecure ? [client.allowInsecureRequests] : [] };
    if (deps.fetch) options[client.customFetch] = deps.fetch as client.CustomFetch;
    const configuration = await client.discovery(new URL(config.issuer), config.clientId, undefined, client.ClientSecretPost(config.clientSecret), options);
    configuration.timeout = config.timeoutMs / 1000;
    const jwksUri = configuration.serverMetadata().jwks_uri;
    const jwksUrl = typeof jwksUri === 'string' && URL.canParse(jwksUri) ? new URL(jwksUri) : null;
    if (jwksUrl === null || !(jwksUrl.protocol === 'https:' || (insecure && jwksUrl.protocol === 'http:'))) {
      throw new Error('the provider metadata has no usable jwks_uri');
    }
    // The keys live as long as the metadata that named them. An unknown kid refetches them at once
    // (no cooldown): a key rotated at the provider then works on the first sign-in that uses it.
    // Only tokens from the token endpoint reach this check, so nobody else can drive refetches.
    const jwks = createRemoteJWKSet(jwksUrl, {
      cacheMaxAge: ttlMs,
      cooldownDuration: 0,
      timeoutDuration: config.timeoutMs,
      ...(deps.fetch ? { [joseCustomFetch]: deps.fetch } : {}),
    });
    return { configuration, jwks, fetchedAt: deps.now() };
  }

  /**
   * The provider's metadata, fetched again once it is OIDC_METADATA_TTL_SECONDS old, so a changed
   * endpoint or key set needs no restart. Concurrent callers share one fetch; a failed fetch is not
   * kept (the next sign-in tries again) and stale metadata is not used after its TTL.
   */
  function discover(): Promise<ProviderState> {
    if (current !== undefined && deps.now() - current.fetchedAt < ttlMs) return Promise.resolve(current);
    pending ??= load()
      .then((state) => {
        current = state;
        return state;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  }

  async function discoverOrThrow(requestId: string): Promise<ProviderState> {
    try {
      return await discover();
    } catch (err) {
      const reason = classifyOidcError(err);
      if (reason === 'issuer-mismatch') {
        logger.warn({ event: 'auth_failure', src, reason, request_id: requestId, err: errorSummary(err) });
        throw new AppError('ERR_INVALID_CREDENTIALS', 401, OIDC_FAILURE_MESSAGE, { cause: err });
      }
      logger.error({ event: 'auth_error', src, reason: 'discovery-failed', request_id: requestId, err: errorSummary(err) });
      throw new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
    }
  }

  function reject(reason: OidcFailureReason, requestId: string, err?: unknown): AppError {
    logger.warn({ event: 'auth_failure', src, reason, request_id: requestId, err: err === undefined ? undefined : errorSummary(err) });
    return new AppError('ERR_INVALID_CREDENTIALS', 401, OIDC_FAILURE_MESSAGE, { cause: err });
  }

  function unavailable(reason: string, requestId: string, err: unknown, extra: Record<string, unknown> = {}): AppError {
    logger.error({ event: 'auth_error', src, reason, ...extra, request_id: requestId, err: errorSummary(err) });
    return new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
  }

  /**
   * openid-client checks iss, aud, exp and nonce but, over TLS from the token endpoint, not the
   * signature (OIDC Core 3.1.3.7 allows that). We check it anyway against the provider's JWKS, so
   * a token endpoint (or anything in front of it) cannot hand us a forged or altered ID token.
   */
  async function verifyIdTokenSignature(state: ProviderState, idToken: string, requestId: string): Promise<void> {
    try {
      await compactVerify(idToken, state.jwks, { algorithms: ID_TOKEN_ALGORITHMS });
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw reject('token-key-unknown', requestId, err);
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw reject('token-signature-invalid', requestId, err);
      if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
        throw reject('token-invalid', requestId, err);
      }
      // The key set could not be fetched or read (timeout, 5xx, not JSON): the provider's fault.
      throw unavailable('jwks-unavailable', requestId, err);
    }
  }

  /**
   * The identity a token response names, as sign-in builds it: the ID token's signature checked
   * against the provider's JWKS, claims mapped, groups from Graph on an overage. Throws the
   * AppErrors of `finish` (401 rejected, 403 too many groups, 503 JWKS or Graph unavailable), logged.
   */
  async function identityFromTokens(provider: ProviderState, tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers, requestId: string): Promise<{ identity: Identity; groupsOverage: boolean }> {
    const claims = tokens.claims();
    if (claims === undefined || typeof tokens.id_token !== 'string') throw reject('token-invalid', requestId);
    await verifyIdTokenSignature(provider, tokens.id_token, requestId);
    const mapped = identityFromClaims(claims as Record<string, unknown>, { flavour: config.flavour, groupsClaim: config.groupsClaim, maxGroups: config.maxGroups });
    if (mapped.kind === 'invalid') throw reject(mapped.reason, requestId);
    if (mapped.kind === 'too-many-groups') {
      logger.warn({ event: 'auth_failure', src, reason: 'too-many-groups', groups: mapped.count, max_groups: config.maxGroups, request_id: requestId });
      throw tooManyGroupsError(mapped.count, config.maxGroups);
    }
    const identity = mapped.identity;
    if (mapped.groupsOverage) {
      try {
        identity.groups = await fetchGraphGroups({ graphBaseUrl: config.graphBaseUrl, accessToken: tokens.access_token, timeoutMs: config.timeoutMs, maxGroups: config.maxGroups, fetch: deps.fetch });
      } catch (err) {
        const reason = err instanceof GraphGroupsError ? err.reason : 'graph-unavailable';
        const entry = { event: reason === 'too-many-groups' ? 'auth_failure' : 'auth_error', user: identity.username, src, reason, max_groups: config.maxGroups, request_id: requestId, err: errorSummary(err) };
        if (reason === 'too-many-groups') logger.warn(entry);
        else logger.error(entry);
        throw isAppError(err) ? err : new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
      }
    }
    return { identity, groupsOverage: mapped.groupsOverage };
  }

  return {
    displayName: config.displayName,
    redirectPath: config.redirectPath,
    issuer: config.issuer,
    flavour: config.flavour,

    async start(returnPath, requestId) {
      const { configuration } = await discoverOrThrow(requestId);
      const flow: OidcFlowState = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        codeVerifier: client.randomPKCECodeVerifier(),
        returnPath,
        expiresAt: Math.floor(deps.now() / 1000) + OIDC_STATE_TTL_SECONDS,
      };
      const url = client.buildAuthorizationUrl(configuration, {
        redirect_uri: config.redirectUri,
        scope: config.scopes,
        response_type: 'code',
        state: flow.state,
        nonce: flow.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(flow.codeVerifier),
        code_challenge_method: 'S256',
      });
      return { location: url.href, stateCookie: sealer.seal(flow) };
    },

    async finish({ pathAndQuery, stateCookie, ip, requestId }) {
      const currentUrl = new URL(config.redirectUri);
      currentUrl.search = new URL(pathAndQuery, 'http://callback.invalid').search;
      const flow = sealer.open(stateCookie, deps.now());
      if (currentUrl.searchParams.has('error')) {
        const idpError = currentUrl.searchParams.get('error')?.slice(0, 64) ?? '';
        if (IDP_DOWN_ERRORS.has(idpError)) {
          logger.error({ event: 'auth_error', src, reason: 'provider-unavailable', idp_error: idpError, request_id: requestId });
          throw new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE);
        }
        // The provider said no (user cancelled, consent refused, user not assigned to the app).
        logger.warn({ event: 'auth_failure', src, reason: 'idp-error', idp_error: idpError, request_id: requestId });
        throw new AppError('ERR_INVALID_CREDENTIALS', 401, OIDC_FAILURE_MESSAGE);
      }
      if (flow === null) throw reject('state-missing', requestId);
      const provider = await discoverOrThrow(requestId);
      const { configuration } = provider;

      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: flow.codeVerifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        });
      } catch (err) {
        // A 5xx, 429, timeout or dropped connection at the token endpoint: the provider is down,
        // which is a 503 ("try again later"), not a failed sign-in.
        if (isProviderDown(err)) throw unavailable('provider-unavailable', requestId, err, { status: providerStatus(err) });
        const reason = classifyOidcError(err);
        if (reason === null) throw err;
        throw reject(reason, requestId, err);
      }

      const { identity, groupsOverage } = await identityFromTokens(provider, tokens, requestId);
      let issued: ReturnType<typeof issueSessionToken>;
      try {
        issued = issueSessionToken({ identity, ip, secret: deps.session.secret, ttlSeconds: deps.session.ttlSeconds, now: deps.now(), groupSelection: deps.session.groupSelection() });
      } catch (err) {
        if (err instanceof SessionTooLargeError) {
          logger.warn({ event: 'auth_failure', user: identity.username, src, reason: 'session-too-large', groups: identity.groups.length, policy_groups: err.neededGroups, group_bytes: err.neededBytes, request_id: requestId });
        }
        throw err;
      }
      if (issued.token.length > MAX_SESSION_TOKEN_BYTES) {
        logger.warn({ event: 'auth_failure', user: identity.username, src, reason: 'session-too-large', groups: identity.groups.length, token_bytes: issued.token.length, request_id: requestId });
        throw new AppError('ERR_SESSION_TOO_LARGE', 403, 'Your sign-in carries more than fits into this gateway\'s session cookie, so you cannot be signed in. Please ask your administrator.');
      }
      logger.info({ event: 'auth_success', user: issued.claims.username, src, sid: issued.claims.sid, groups_overage: groupsOverage || undefined, groups: issued.groups.count, token_groups: issued.groups.groups.length, request_id: requestId });
      const idpRefresh = typeof tokens.refresh_token === 'string' && tokens.refresh_token !== '' ? sealIdpRefresh(tokens.refresh_token, issued.claims.sid, deps.session.secret) : null;
      return { token: issued.token, claims: issued.claims, returnPath: flow.returnPath, groups: identity.groups, idpRefresh };
    },

    async refresh(refreshToken, expectedSub, requestId) {
      const what = 'renewal';
      let provider: ProviderState;
      try {
        provider = await discover();
      } catch (err) {
        throw unavailable('discovery-failed', requestId, err, { what });
      }
      let tokens: Awaited<ReturnType<typeof client.refreshTokenGrant>>;
      try {
        tokens = await client.refreshTokenGrant(provider.configuration, refreshToken);
      } catch (err) {
        if (isProviderDown(err)) throw unavailable('provider-unavailable', requestId, err, { what, status: providerStatus(err) });
        // The provider refuses the gateway, not the user (an expired client secret is invalid_client,
        // e.g. Entra's AADSTS7000222): a configuration problem for the operator, which must not end
        // every session at its next renewal. Renewal fails closed (503) until it is fixed.
        if (err instanceof client.ResponseBodyError && GATEWAY_SIDE_OAUTH_ERRORS.has(err.error)) {
          throw unavailable('client-rejected', requestId, err, { what, idp_error: err.error });
        }
        // An error answer (invalid_grant: revoked, expired, user disabled or deleted; or a new ID
        // token that fails openid-client's checks): the provider no longer vouches for the session.
        const reason = err instanceof client.ResponseBodyError ? 'idp-refresh-refused' : classifyOidcError(err);
        if (reason === null) throw unavailable('refresh-failed', requestId, err, { what });
        logger.warn({ event: 'auth_failure', src, reason, what, idp_error: err instanceof client.ResponseBodyError ? err.error : undefined, request_id: requestId });
        return { kind: 'refused', reason };
      }
      const rotated = typeof tokens.refresh_token === 'string' && tokens.refresh_token !== '' ? tokens.refresh_token : refreshToken;
      if (typeof tokens.id_token !== 'string') return { kind: 'ok', groups: undefined, refreshToken: rotated };
      let identity: Identity;
      try {
        ({ identity } = await identityFromTokens(provider, tokens, requestId));
      } catch (err) {
        // 401/403: the new ID token fails a sign-in check; 503: its keys or Graph cannot be read.
        if (isAppError(err) && err.status !== 503) return { kind: 'refused', reason: 'token-rejected' };
        throw err;
      }
      if (identity.sub !== expectedSub) {
        logger.warn({ event: 'auth_failure', src, reason: 'subject-changed', what, request_id: requestId });
        return { kind: 'refused', reason: 'subject-changed' };
      }
      return { kind: 'ok', groups: identity.groups, refreshToken: rotated };
    },

    async endSessionUrl(postLogoutRedirectUri) {
      let configuration: client.Configuration;
      try {
        ({ configuration } = await discover());
      } catch {
        return null;
      }
      if (typeof configuration.serverMetadata().end_session_endpoint !== 'string') return null;
      return client.buildEndSessionUrl(configuration, { post_logout_redirect_uri: postLogoutRedirectUri, client_id: config.clientId }).href;
    },
  };
}
