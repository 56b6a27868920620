/**
 * Maps verified ID token claims of Azure AD (Entra ID) or a generic OIDC provider to an Identity,
 * and fetches group memberships from Microsoft Graph when Azure reports a groups overage.
 *
 * The subject is never built from `email` or `preferred_username`: both are editable by users or
 * tenant admins in many setups, so keying accounts on them allows account takeover (the "nOAuth"
 * class, https://www.descope.com/blog/post/noauth). Azure: `tid` + `oid`; generic: `iss` + `sub`.
 */
import crypto from 'node:crypto';
import { AppError } from '../errors.js';
import type { OidcFlavour } from '../services/oidc-config.js';
import type { Identity } from './types.js';

export type ClaimsMapping = { kind: 'ok'; identity: Identity; groupsOverage: boolean } | { kind: 'invalid'; reason: 'claims-missing' };

const MAX_GROUPS = 500;
const MAX_GRAPH_PAGES = 20;

function text(value: unknown, max = 256): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= max ? value : undefined;
}

/** `oidc:<first 16 hex of sha256(iss)>`: distinct per provider, short enough for a header value. */
export function oidcSubjectPrefix(issuer: string): string {
  return 'oidc:' + crypto.createHash('sha256').update(issuer, 'utf8').digest('hex').slice(0, 16);
}

/**
 * Builds the identity from claims that openid-client has already verified (signature, iss, aud,
 * exp, nonce). Guaranteed: `sub` is `azure:<tid>:<oid>` or `oidc:<hash(iss)>:<sub>`, so local and
 * OIDC accounts never share a subject; groups are strings only.
 * Not checked: the token itself (the caller's job).
 */
export function identityFromClaims(claims: Record<string, unknown>, flavour: OidcFlavour, groupsClaim: string): ClaimsMapping {
  let sub: string;
  if (flavour === 'azure') {
    const tid = text(claims.tid, 64);
    const oid = text(claims.oid, 64);
    if (tid === undefined || oid === undefined) return { kind: 'invalid', reason: 'claims-missing' };
    sub = `azure:${tid}:${oid}`;
  } else {
    const iss = text(claims.iss, 1000);
    const subject = text(claims.sub);
    if (iss === undefined || subject === undefined) return { kind: 'invalid', reason: 'claims-missing' };
    sub = `${oidcSubjectPrefix(iss)}:${subject}`;
  }
  const rawGroups = claims[groupsClaim];
  const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string' && g !== '').slice(0, MAX_GROUPS) : [];
  const claimNames = claims._claim_names;
  const groupsOverage = typeof claimNames === 'object' && claimNames !== null && Object.prototype.hasOwnProperty.call(claimNames, groupsClaim);
  const identity: Identity = {
    sub,
    username: text(claims.preferred_username) ?? text(claims.email) ?? text(claims.sub) ?? sub,
    groups,
    src: flavour,
  };
  const name = text(claims.name);
  const email = text(claims.email);
  if (name) identity.name = name;
  if (email) identity.email = email;
  return { kind: 'ok', identity, groupsOverage };
}

export interface GraphGroupsInput {
  graphBaseUrl: string;
  accessToken: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/**
 * The user's groups, direct and nested, from `GET /v1.0/me/transitiveMemberOf/microsoft.graph.group`,
 * following `@odata.nextLink`. Each group is its displayName, or its id when that is missing.
 * Guaranteed: the access token is only ever sent to GRAPH_BASE_URL's origin (a nextLink pointing
 * elsewhere is an error); at most 20 pages and 500 groups.
 * Throws AppError('ERR_IDP_UNAVAILABLE', 503) when Graph is unreachable, slow or answers non-2xx.
 */
export async function fetchGraphGroups(input: GraphGroupsInput): Promise<string[]> {
  const doFetch = input.fetch ?? fetch;
  const origin = new URL(input.graphBaseUrl).origin;
  let next: string | undefined = `${input.graphBaseUrl}/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id,displayName`;
  const groups: string[] = [];
  const fail = (cause: unknown) => new AppError('ERR_IDP_UNAVAILABLE', 503, 'Your group memberships could not be read from Microsoft Graph. Please try again in a few minutes.', { cause });
  for (let page = 0; next !== undefined && page < MAX_GRAPH_PAGES; page++) {
    if (new URL(next).origin !== origin) throw fail(new Error('Graph nextLink points to another origin'));
    let body: unknown;
    try {
      const res = await doFetch(next, {
        headers: { authorization: `Bearer ${input.accessToken}`, accept: 'application/json' },
        signal: AbortSignal.timeout(input.timeoutMs),
        redirect: 'error',
      });
      if (!res.ok) throw new Error(`Graph answered ${res.status}`);
      body = await res.json();
    } catch (err) {
      throw fail(err);
    }
    const value = (body as { value?: unknown }).value;
    if (Array.isArray(value)) {
      for (const entry of value) {
        const group = entry as { id?: unknown; displayName?: unknown };
        const label = text(group.displayName) ?? text(group.id);
        if (label !== undefined && groups.length < MAX_GROUPS) groups.push(label);
      }
    }
    const link = (body as { '@odata.nextLink'?: unknown })['@odata.nextLink'];
    next = typeof link === 'string' ? link : undefined;
  }
  return groups;
}
