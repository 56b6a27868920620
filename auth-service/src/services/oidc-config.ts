/**
 * The OIDC / Azure AD (Entra ID) part of the environment. config.ts calls `loadOidcConfig` with its
 * error list, so these problems are reported together with every other one.
 */
import type { Env } from '../env.js';

export type OidcFlavour = 'azure' | 'oidc';

export interface OidcConfig {
  /** 'azure' when AZURE_TENANT_ID is used: `sub` is then built from `tid` and `oid`. */
  flavour: OidcFlavour;
  /** Issuer identifier (discovery is `{issuer}/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Path of the redirect URI on PUBLIC_BASE_URL, e.g. /login/oauth2/code/azure. */
  redirectPath: string;
  /** Absolute redirect URI: PUBLIC_BASE_URL + redirectPath. */
  redirectUri: string;
  scopes: string;
  displayName: string;
  timeoutMs: number;
  groupsClaim: string;
  /** Microsoft Graph root without a trailing slash (group overage). */
  graphBaseUrl: string;
  /** How long discovery metadata and the JWKS are reused before they are fetched again. */
  metadataTtlSeconds: number;
  /** More groups than this (ID token claim or Graph) ends sign-in with an error, never a cut list. */
  maxGroups: number;
}

export interface LoginMethods {
  password: boolean;
  oidc: boolean;
}

export interface OidcSettings {
  oidc: OidcConfig | null;
  loginMethods: LoginMethods;
  /** External origin of the gateway (PUBLIC_BASE_URL), never derived from the Host header. */
  publicBaseUrl: string | null;
}

/** OIDC_SCOPES by default. */
export const DEFAULT_OIDC_SCOPES = 'openid profile email offline_access';

/** Never shown in messages. */
export const OIDC_SECRET_VARIABLES: ReadonlySet<string> = new Set(['OIDC_CLIENT_SECRET', 'AZURE_CLIENT_SECRET']);

/**
 * The directory (tenant) ID, a GUID. A domain (`contoso.onmicrosoft.com`) or `common`/`organizations`
 * would pass discovery, but Entra's metadata and ID tokens name the issuer by the GUID, so every
 * sign-in would then fail the issuer check; refused at start-up instead.
 */
const TENANT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CLIENT_ID = /^[\x21-\x7e]{1,200}$/;
const REDIRECT_PATH = /^\/[A-Za-z0-9/_.-]{1,200}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const CLAIM_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

function read(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return OIDC_SECRET_VARIABLES.has(name) ? raw : raw.trim();
}

function received(name: string, value: string | undefined): string {
  if (value === undefined) return 'received nothing';
  return OIDC_SECRET_VARIABLES.has(name) ? 'value masked' : `received ${JSON.stringify(value)}`;
}

function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

function readInteger(env: Env, name: string, fallback: number, min: number, max: number, push: (name: string, rule: string) => void): number {
  const value = read(env, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < min || n > max) {
    push(name, `must be an integer from ${min} to ${max}`);
    return fallback;
  }
  return n;
}

/**
 * Reads OIDC_*, AZURE_*, GRAPH_BASE_URL, LOGIN_METHODS and PUBLIC_BASE_URL, appending one message
 * per problem to `errors` (variable, rule, value received; secrets masked).
 *
 * Guaranteed: OIDC is on only with an issuer (or Azure tenant), a client id and a secret, and then
 * PUBLIC_BASE_URL is set; plain-http issuers and Graph URLs need `allowInsecureHttp`.
 * Not checked: that the issuer is reachable or its discovery document valid (checked on first use).
 */
export function loadOidcConfig(env: Env, errors: string[], allowInsecureHttp: boolean): OidcSettings {
  const errorsBefore = errors.length;
  const push = (name: string, rule: string) => errors.push(`${name}: ${rule} (${received(name, read(env, name))})`);

  const tenant = read(env, 'AZURE_TENANT_ID');
  const azureClientId = read(env, 'AZURE_CLIENT_ID');
  const azureSecret = read(env, 'AZURE_CLIENT_SECRET');
  const issuerValue = read(env, 'OIDC_ISSUER');
  const genericClientId = read(env, 'OIDC_CLIENT_ID');
  const genericSecret = read(env, 'OIDC_CLIENT_SECRET');

  const azure = tenant !== undefined || azureClientId !== undefined || azureSecret !== undefined;
  const generic = genericClientId !== undefined || genericSecret !== undefined;
  let enabled = azure || generic || issuerValue !== undefined;

  if (azure && generic) {
    push('OIDC_CLIENT_ID', 'set either the AZURE_* or the OIDC_CLIENT_ID/OIDC_CLIENT_SECRET variables, not both');
  }
  if (tenant !== undefined && !TENANT.test(tenant)) push(
      'AZURE_TENANT_ID',
      "must be the Directory (tenant) ID, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 (Entra admin center → Overview); a domain name or 'common'/'organizations' is not accepted because Entra names the token issuer by the GUID",
    );

  let issuer = issuerValue;
  if (azure && issuer === undefined && tenant !== undefined) issuer = `https://login.microsoftonline.com/${tenant}/v2.0`;
  const clientId = azure ? azureClientId : genericClientId;
  const secret = azure ? azureSecret : genericSecret;
  if (enabled) {
    if (issuer === undefined) push(azure ? 'AZURE_TENANT_ID' : 'OIDC_ISSUER', 'is required to enable OIDC sign-in');
    if (clientId === undefined) push(azure ? 'AZURE_CLIENT_ID' : 'OIDC_CLIENT_ID', 'is required to enable OIDC sign-in');
    else if (!CLIENT_ID.test(clientId)) push(azure ? 'AZURE_CLIENT_ID' : 'OIDC_CLIENT_ID', 'must be 1-200 printable characters without spaces');
    if (secret === undefined) push(azure ? 'AZURE_CLIENT_SECRET' : 'OIDC_CLIENT_SECRET', 'is required to enable OIDC sign-in');
  }
  if (issuer !== undefined) {
    const url = parseUrl(issuer);
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '' || url.username !== '') {
      push('OIDC_ISSUER', 'must be an https URL without query or fragment');
    } else if (url.protocol === 'http:' && !allowInsecureHttp) {
      push('OIDC_ISSUER', 'must use https; plain http needs ALLOW_INSECURE_HTTP_IDP=true, for tests only');
    }
  }

  const graphValue = read(env, 'GRAPH_BASE_URL') ?? 'https://graph.microsoft.com';
  const graphUrl = parseUrl(graphValue);
  if (graphUrl === null || (graphUrl.protocol !== 'https:' && !(graphUrl.protocol === 'http:' && allowInsecureHttp)) || graphUrl.search !== '') {
    push('GRAPH_BASE_URL', 'must be an https URL (plain http needs ALLOW_INSECURE_HTTP_IDP=true)');
  }

  const redirectPath = read(env, 'OIDC_REDIRECT_PATH') ?? (azure ? '/login/oauth2/code/azure' : '/login/oauth2/code/oidc');
  if (!REDIRECT_PATH.test(redirectPath) || !redirectPath.startsWith('/login/') || redirectPath.includes('..')) {
    push('OIDC_REDIRECT_PATH', 'must be a path under /login/ (nginx routes only /login/* to the auth service)');
  }
  // offline_access: Entra ID (and Keycloak, Okta, Auth0) issue a refresh token only for it, and
  // renewal redeems that token to ask the provider whether the user may still sign in.
  const scopes = read(env, 'OIDC_SCOPES') ?? DEFAULT_OIDC_SCOPES;
  if (!scopes.split(/\s+/).includes('openid') || !scopes.split(/\s+/).every((s) => SCOPE_TOKEN.test(s))) {
    push('OIDC_SCOPES', 'must be space-separated scopes including openid');
  }
  const displayName = read(env, 'OIDC_DISPLAY_NAME') ?? (azure ? 'Microsoft' : 'your identity provider');
  if (displayName.length > 60 || /[\u0000-\u001f\u007f]/.test(displayName)) push('OIDC_DISPLAY_NAME', 'must be at most 60 characters, without control characters');
  const timeoutValue = read(env, 'OIDC_TIMEOUT_MS') ?? '5000';
  const timeoutMs = Number(timeoutValue);
  if (!/^[0-9]+$/.test(timeoutValue) || timeoutMs < 100 || timeoutMs > 60_000) push('OIDC_TIMEOUT_MS', 'must be an integer from 100 to 60000');
  const metadataTtlSeconds = readInteger(env, 'OIDC_METADATA_TTL_SECONDS', 600, 1, 86_400, push);
  const maxGroups = readInteger(env, 'OIDC_MAX_GROUPS', 2000, 1, 10_000, push);
  const groupsClaim = read(env, 'OIDC_GROUPS_CLAIM') ?? 'groups';
  if (!CLAIM_NAME.test(groupsClaim)) push('OIDC_GROUPS_CLAIM', 'must be a claim name (letters, digits, _ . : -)');

  const baseValue = read(env, 'PUBLIC_BASE_URL');
  let publicBaseUrl: string | null = null;
  if (baseValue !== undefined) {
    const url = parseUrl(baseValue);
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '') {
      push('PUBLIC_BASE_URL', 'must be the gateway origin, e.g. https://gw.example.com (no path, query or credentials)');
    } else {
      publicBaseUrl = url.origin;
    }
  } else if (enabled) {
    push('PUBLIC_BASE_URL', 'is required with OIDC sign-in (the redirect URI is built from it, never from the Host header)');
  }

  const methodsValue = read(env, 'LOGIN_METHODS');
  let loginMethods: LoginMethods = { password: true, oidc: enabled };
  if (methodsValue !== undefined) {
    const words = methodsValue.split(',').map((w) => w.trim());
    const known = words.every((w) => w === 'password' || w === 'oidc') && new Set(words).size === words.length;
    if (!known) {
      push('LOGIN_METHODS', 'must be password, oidc or password,oidc');
    } else {
      loginMethods = { password: words.includes('password'), oidc: words.includes('oidc') };
      if (loginMethods.oidc && !enabled) {
        push('LOGIN_METHODS', 'includes oidc, but no OIDC_* or AZURE_* provider is configured');
        enabled = false;
      }
    }
  }

  if (errors.length > errorsBefore || !enabled || !loginMethods.oidc || issuer === undefined || clientId === undefined || secret === undefined || publicBaseUrl === null) {
    return { oidc: null, loginMethods: { password: loginMethods.password, oidc: false }, publicBaseUrl };
  }
  return {
    oidc: {
      flavour: azure ? 'azure' : 'oidc',
      issuer,
      clientId,
      clientSecret: secret,
      redirectPath,
      redirectUri: publicBaseUrl + redirectPath,
      scopes,
      displayName,
      timeoutMs,
      groupsClaim,
      graphBaseUrl: graphValue.replace(/\/+$/, ''),
      metadataTtlSeconds,
      maxGroups,
    },
    loginMethods,
    publicBaseUrl,
  };
}
