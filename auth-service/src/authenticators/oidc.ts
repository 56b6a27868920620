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

export type ClaimsMapping =
  | { kind: 'ok'; identity: Identity; groupsOverage: boolean }
  | { kind: 'invalid'; reason: 'claims-missing' }
  | { kind: 'too-many-groups'; count: number };

/** The session claim that carries the provider's session id (`sid` of the ID token), for front-channel logout. */
export const IDP_SID_CLAIM = 'idp_sid';

export interface ClaimsMappingOptions {
  flavour: OidcFlavour;
  groupsClaim: string;
  /** More groups than this is refused, never cut: a cut list could drop a group a deny rule names. */
  maxGroups: number;
}

function text(value: unknown, max = 256): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= max ? value : undefined;
}

/** `oidc:<first 16 hex of sha256(iss)>`: distinct per provider, short enough for a header value. */
export function oidcSubjectPrefix(issuer: string): string {
  return 'oidc:' + crypto.createHash('sha256').update(issuer, 'utf8').digest('hex').slice(0, 16);
}

/**
 * Whether the provider vouches for `email`. Generic OIDC: `email_verified: true` (OIDC Core 5.1).
 * Entra ID never sends `email_verified`, and Microsoft documents `email` as mutable and unverified;
 * its optional claim `xms_edov` (email domain owner verified) is the only statement it makes, so
 * Azure e-mails count as verified only with `xms_edov: true`.
 */
function emailVerifiedFrom(claims: Record<string, unknown>, flavour: OidcFlavour): boolean {
  return flavour === 'azure' ? claims.xms_edov === true : claims.email_verified === true;
}

/**
 * Builds the identity from claims whose token the caller has already verified (signature, iss,
 * aud, exp, nonce). Guaranteed: `sub` is `azure:<tid>:<oid>` or `oidc:<hash(iss)>:<sub>`, so local
 * and OIDC accounts never share a subject; groups are strings only, and never more than
 * `maxGroups` (more is `too-many-groups`, not a shortened list); `emailVerified` is true only when
 * the provider says so; the ID token's `sid` becomes the `idp_sid` extra claim.
 * Not checked: the token itself (the caller's job).
 */
export function identityFromClaims(claims: Record<string, unknown>, opts: ClaimsMappingOptions): ClaimsMapping {
  const { flavour, groupsClaim } = opts;
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
  const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string' && g !== '') : [];
  if (groups.length > opts.maxGroups) return { kind: 'too-many-groups', count: groups.length };
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
  if (email) {
    identity.email = email;
    identity.emailVerified = emailVerifiedFrom(claims, flavour);
  }
  const idpSid = text(claims.sid);
  if (idpSid) identity.extraClaims = { [IDP_SID_CLAIM]: idpSid };
  return { kind: 'ok', identity, groupsOverage };
}

export interface GraphGroupsInput {
  graphBaseUrl: string;
  accessToken: string;
  timeoutMs: number;
  /** More groups than this ends the read with `too-many-groups`. */
  maxGroups: number;
  fetch?: typeof fetch;
}

/** Why the group list could not be used; `reason` goes to the log. */
export type GraphFailureReason = 'graph-unavailable' | 'graph-loop' | 'graph-too-many-pages' | 'too-many-groups';

/** A failed Graph read: an AppError (shown as its page) that also names the reason for the log. */
export class GraphGroupsError extends AppError {
  readonly reason: GraphFailureReason;
  constructor(reason: GraphFailureReason, status: number, message: string, cause?: unknown) {
    super(reason === 'too-many-groups' ? 'ERR_INVALID_CREDENTIALS' : 'ERR_IDP_UNAVAILABLE', status, message, { cause });
    this.reason = reason;
  }
}

/** Graph's largest page for this call (its default is 100), so 1,000 groups take 2 requests. */
const GRAPH_PAGE_SIZE = 999;
/** Graph's default page size: the page cap assumes pages at least this full. */
const GRAPH_SMALLEST_FULL_PAGE = 100;

export function tooManyGroupsError(count: number | string, maxGroups: number): GraphGroupsError {
  return new GraphGroupsError(
    'too-many-groups',
    403,
    `Your account is a member of ${count} groups, more than the ${maxGroups} this gateway is set up to accept, so you cannot be signed in. Please ask your administrator.`,
  );
}

/**
 * The user's groups, direct and nested, from `GET /v1.0/me/transitiveMemberOf/microsoft.graph.group`,
 * following `@odata.nextLink`. Each group is its object id, the form the ID token's `groups` claim
 * uses, so a user's groups look the same with or without an overage (display names are mapped in
 * the policy's `group_aliases`).
 *
 * Guaranteed: the access token is only ever sent to GRAPH_BASE_URL's origin; the list is complete
 * or the call fails, never a silently shortened list (a missing group could let a user past a
 * rule that denies it). It fails with GraphGroupsError:
 * - `too-many-groups` (403) above `maxGroups`;
 * - `graph-loop` (503) when a nextLink repeats an earlier page;
 * - `graph-too-many-pages` (503) after ceil(maxGroups / 100) + 5 pages (endless or near-empty pages);
 * - `graph-unavailable` (503) when Graph is unreachable, slow, answers non-2xx, lists a group
 *   without an id, or a nextLink points to another origin.
 */
export async function fetchGraphGroups(input: GraphGroupsInput): Promise<string[]> {
  const doFetch = input.fetch ?? fetch;
  const origin = new URL(input.graphBaseUrl).origin;
  const maxPages = Math.ceil(input.maxGroups / GRAPH_SMALLEST_FULL_PAGE) + 5;
  let next: string | undefined = `${input.graphBaseUrl}/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=${GRAPH_PAGE_SIZE}`;
  const visited = new Set<string>();
  const groups: string[] = [];
  const unavailable = (cause: unknown) =>
    new GraphGroupsError('graph-unavailable', 503, 'Your group memberships could not be read from Microsoft Graph. Please try again in a few minutes.', cause);
  const inconsistent = (reason: 'graph-loop' | 'graph-too-many-pages') =>
    new GraphGroupsError(
      reason,
      503,
      'Microsoft Graph returned a group list that does not end, so your group memberships could not be read. Please try again later; if it keeps happening, tell your administrator.',
    );
  while (next !== undefined) {
    if (new URL(next).origin !== origin) throw unavailable(new Error('Graph nextLink points to another origin'));
    if (visited.has(next)) throw inconsistent('graph-loop');
    if (visited.size >= maxPages) throw inconsistent('graph-too-many-pages');
    visited.add(next);
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
      throw unavailable(err);
    }
    const value = (body as { value?: unknown }).value;
    if (Array.isArray(value)) {
      for (const entry of value) {
        // Object ids, as the ID token's `groups` claim has them: one form whatever the count
        // (policies name display names through `group_aliases`). A group without an id is a
        // malformed answer; skipping it could hide a group a deny rule names.
        const id = text((entry as { id?: unknown }).id, 64);
        if (id === undefined) throw unavailable(new Error('Graph listed a group without an id'));
        groups.push(id);
      }
    }
    if (groups.length > input.maxGroups) throw tooManyGroupsError(`more than ${input.maxGroups}`, input.maxGroups);
    const link = (body as { '@odata.nextLink'?: unknown })['@odata.nextLink'];
    next = typeof link === 'string' ? link : undefined;
  }
  return groups;
}
