/**
 * The OIDC authorization-code flow (PKCE, state, nonce) behind GET /login/oidc and the callback,
 * on openid-client. The routes around it only read cookies and render.
 */
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { SessionClaims } from '../../../njs/src/core/session-contract.js';
import { fetchGraphGroups, identityFromClaims } from '../authenticators/oidc.js';
import { AppError, isAppError } from '../errors.js';
import { errorSummary } from '../logger.js';
import type { OidcConfig } from './oidc-config.js';
import { createStateSealer, OIDC_STATE_TTL_SECONDS, type OidcFlowState } from './oidc-state.js';
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
  | 'claims-missing';

export const OIDC_FAILURE_MESSAGE = 'Sign-in with your identity provider did not complete. Please start again.';

export interface OidcServiceDeps {
  config: OidcConfig;
  /** Plain-http issuers allowed (ALLOW_INSECURE_HTTP_IDP=true, tests only). */
  allowInsecureHttp: boolean;
  session: { secret: string; ttlSeconds: number };
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
}

export interface OidcService {
  readonly displayName: string;
  readonly redirectPath: string;
  /** Throws AppError('ERR_IDP_UNAVAILABLE', 503) when discovery fails or times out. */
  start(returnPath: string, requestId: string): Promise<OidcStart>;
  /**
   * Finishes the flow and signs a session. Throws AppError ERR_INVALID_CREDENTIALS (401) for any
   * rejected response (bad state, IdP error, replayed code, iss/aud/nonce mismatch, expired or
   * unsigned ID token), ERR_IDP_UNAVAILABLE (503) when the provider or Graph is unreachable.
   * Every outcome is logged as auth_success, auth_failure or auth_error.
   */
  finish(input: OidcCallbackInput): Promise<OidcSuccess>;
  /** RP-initiated logout URL, or null when the provider has no end_session_endpoint or is down. */
  endSessionUrl(postLogoutRedirectUri: string): Promise<string | null>;
}

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

/** Network failures and timeouts (fetch's TypeError, AbortSignal.timeout's TimeoutError). */
function isUnreachable(err: unknown): boolean {
  return causes(err).some((e) => {
    if (!(e instanceof Error)) return false;
    return e.name === 'TimeoutError' || e.name === 'AbortError' || (e instanceof TypeError && /fetch failed/i.test(e.message)) || /ECONNREFUSED|ECONNRESET|ENOTFOUND|UND_ERR/.test(String((e as { code?: unknown }).code ?? ''));
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

export function createOidcService(deps: OidcServiceDeps): OidcService {
  const { config, logger } = deps;
  const sealer = createStateSealer(deps.session.secret);
  const src = config.flavour;
  let discovered: Promise<client.Configuration> | undefined;

  function discover(): Promise<client.Configuration> {
    discovered ??= (async () => {
      const execute = deps.allowInsecureHttp && config.issuer.startsWith('http:') ? [client.allowInsecureRequests] : [];
      const options: client.DiscoveryRequestOptions = { timeout: config.timeoutMs / 1000, execute };
      if (deps.fetch) options[client.customFetch] = deps.fetch as client.CustomFetch;
      const configuration = await client.discovery(new URL(config.issuer), config.clientId, undefined, client.ClientSecretPost(config.clientSecret), options);
      configuration.timeout = config.timeoutMs / 1000;
      return configuration;
    })();
    // A failed discovery is not cached: the next sign-in tries again.
    discovered.catch(() => {
      discovered = undefined;
    });
    return discovered;
  }

  async function discoverOrThrow(requestId: string): Promise<client.Configuration> {
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

  return {
    displayName: config.displayName,
    redirectPath: config.redirectPath,

    async start(returnPath, requestId) {
      const configuration = await discoverOrThrow(requestId);
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
        // The provider said no (user cancelled, consent refused, user not assigned to the app).
        logger.warn({ event: 'auth_failure', src, reason: 'idp-error', idp_error: currentUrl.searchParams.get('error')?.slice(0, 64), request_id: requestId });
        throw new AppError('ERR_INVALID_CREDENTIALS', 401, OIDC_FAILURE_MESSAGE);
      }
      if (flow === null) throw reject('state-missing', requestId);
      const configuration = await discoverOrThrow(requestId);

      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: flow.codeVerifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        });
      } catch (err) {
        if (isUnreachable(err)) {
          logger.error({ event: 'auth_error', src, reason: 'source-unavailable', request_id: requestId, err: errorSummary(err) });
          throw new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
        }
        const reason = classifyOidcError(err);
        if (reason === null) throw err;
        throw reject(reason, requestId, err);
      }

      const claims = tokens.claims();
      if (claims === undefined) throw reject('token-invalid', requestId);
      const mapped = identityFromClaims(claims as Record<string, unknown>, config.flavour, config.groupsClaim);
      if (mapped.kind === 'invalid') throw reject(mapped.reason, requestId);
      const identity = mapped.identity;
      if (mapped.groupsOverage) {
        try {
          identity.groups = await fetchGraphGroups({ graphBaseUrl: config.graphBaseUrl, accessToken: tokens.access_token, timeoutMs: config.timeoutMs, fetch: deps.fetch });
        } catch (err) {
          logger.error({ event: 'auth_error', user: identity.username, src, reason: 'graph-unavailable', request_id: requestId, err: errorSummary(err) });
          throw isAppError(err) ? err : new AppError('ERR_IDP_UNAVAILABLE', 503, IDP_UNAVAILABLE_MESSAGE, { cause: err });
        }
      }
      const issued = issueSessionToken({ identity, ip, secret: deps.session.secret, ttlSeconds: deps.session.ttlSeconds, now: deps.now() });
      logger.info({ event: 'auth_success', user: issued.claims.username, src, sid: issued.claims.sid, groups_overage: mapped.groupsOverage || undefined, request_id: requestId });
      return { token: issued.token, claims: issued.claims, returnPath: flow.returnPath };
    },

    async endSessionUrl(postLogoutRedirectUri) {
      let configuration: client.Configuration;
      try {
        configuration = await discover();
      } catch {
        return null;
      }
      if (typeof configuration.serverMetadata().end_session_endpoint !== 'string') return null;
      return client.buildEndSessionUrl(configuration, { post_logout_redirect_uri: postLogoutRedirectUri, client_id: config.clientId }).href;
    },
  };
}
