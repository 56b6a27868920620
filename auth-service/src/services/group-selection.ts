/**
 * Which of a user's groups go into the session token (issue 9: users in 250 to 1,000 groups).
 *
 * The token is a cookie: browsers cap it near 4 KiB and nginx reads the sign-in answer into a 4 KiB
 * buffer, so a token holding every group of a large-enterprise user is a 502 or a dropped cookie. The
 * gate needs only the groups its compiled policy names; the upstream gets, in X-Payload-groups, the
 * ones PAYLOAD_GROUPS selects. Everything else stays out, and `groups_count` + `groups_digest` say
 * that the list was filtered and of what.
 *
 * Pure: plain data in, plain data out (the policy file is read by policy-groups-source.ts).
 */
import crypto from 'node:crypto';
import type { GatePolicy } from '../../../njs/src/core/policy-contract.js';
import { AppError } from '../errors.js';

/**
 * Most bytes the `groups` claim may take in the token (its JSON text, UTF-8). Base64url makes that
 * 1,600 characters of cookie, which leaves room for the other claims (a sealed Tableau session
 * among them) under the 4 KiB a browser keeps and nginx's default proxy buffer reads.
 */
export const MAX_TOKEN_GROUP_BYTES = 1200;

/** PAYLOAD_GROUPS, parsed: which groups the upstream sees in X-Payload-groups. */
export interface PayloadGroupsRule {
  /** `*`: every group (still within MAX_TOKEN_GROUP_BYTES). */
  all: boolean;
  exact: string[];
  /** `Prefix*` entries, without the `*`. */
  prefixes: string[];
}

/** No PAYLOAD_GROUPS: the upstream sees only the groups the policy names. */
export const NO_PAYLOAD_GROUPS: PayloadGroupsRule = { all: false, exact: [], prefixes: [] };

/** What decides which groups a token carries: the policy's group names and PAYLOAD_GROUPS. */
export interface GroupSelection {
  /** Group names (or Entra object ids) the compiled policy compares with the `groups` claim. */
  policyGroups: ReadonlySet<string>;
  payload: PayloadGroupsRule;
  /** The app names of the same compiled policy (its `apps:`); absent: none. */
  policyApps?: ReadonlySet<string>;
}

export interface SelectedGroups {
  /** The token's `groups`, in the identity's order, without duplicates. */
  groups: string[];
  /** True when some of the user's groups were left out. */
  filtered: boolean;
  /** Distinct groups the user has (the `groups_count` claim when filtered). */
  count: number;
  /** base64url(SHA-256(JSON of the sorted distinct list)) (the `groups_digest` claim when filtered). */
  digest: string;
  /** Groups PAYLOAD_GROUPS selected that did not fit into MAX_TOKEN_GROUP_BYTES. */
  overBudget: number;
}

/** A sign-in refused because the groups the gate must see do not fit into a session token. */
export class SessionTooLargeError extends AppError {
  readonly neededGroups: number;
  readonly neededBytes: number;
  constructor(neededGroups: number, neededBytes: number) {
    super(
      'ERR_SESSION_TOO_LARGE',
      403,
      `Your account is in ${neededGroups} of the groups this gateway's access policy names, more than fit into a session, so you cannot be signed in. Please ask your administrator.`,
    );
    this.name = 'SessionTooLargeError';
    this.neededGroups = neededGroups;
    this.neededBytes = neededBytes;
  }
}

/**
 * Parses PAYLOAD_GROUPS: a comma list of exact group names, `Prefix*` patterns, or `*`. Blank or
 * unset is NO_PAYLOAD_GROUPS. Returns every problem at once (a `*` anywhere but at the end of an
 * entry, an empty entry).
 */
export function parsePayloadGroups(raw: string | undefined): { ok: true; rule: PayloadGroupsRule } | { ok: false; errors: string[] } {
  if (raw === undefined || raw.trim() === '') return { ok: true, rule: NO_PAYLOAD_GROUPS };
  const rule: PayloadGroupsRule = { all: false, exact: [], prefixes: [] };
  const errors: string[] = [];
  const entries = raw.split(',').map((e) => e.trim());
  entries.forEach((entry, i) => {
    const position = `entry ${i + 1} of ${entries.length}`;
    const star = entry.indexOf('*');
    if (entry === '') errors.push(`${position} is empty; separate names with single commas`);
    else if (entry === '*') rule.all = true;
    else if (star >= 0 && star !== entry.length - 1) errors.push(`${position} (${JSON.stringify(entry)}) has a '*' that is not at the end; write an exact name, 'Prefix*' or '*'`);
    else if (star >= 0) rule.prefixes.push(entry.slice(0, -1));
    else rule.exact.push(entry);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rule };
}

/**
 * Every group name the compiled policy compares with the `groups` claim: `conditions.groups` of
 * every rule, allow and deny alike, and `conditions.claims` entries named `groups`. Aliases are
 * already resolved by the compiler. The rules of every app section (`apps:`) count too: one session
 * serves every app behind the gateway. Policy off: none.
 */
export function policyGroupNames(policy: GatePolicy): Set<string> {
  const names = new Set<string>();
  if ('off' in policy) return names;
  const rules = [...policy.rules];
  for (const app of Object.values(policy.apps ?? {})) rules.push(...app.rules);
  for (const rule of rules) {
    const c = rule.conditions;
    if (c === undefined) continue;
    for (const g of c.groups ?? []) names.add(g);
    for (const claim of c.claims ?? []) if (claim.name === 'groups') for (const g of claim.values) names.add(g);
  }
  return names;
}

function payloadSelects(rule: PayloadGroupsRule, group: string): boolean {
  return rule.all || rule.exact.includes(group) || rule.prefixes.some((p) => group.startsWith(p));
}

/** base64url SHA-256 of the JSON array of the distinct groups sorted by UTF-16 code units. */
export function groupsDigest(distinct: readonly string[]): string {
  const sorted = [...distinct].sort();
  return crypto.createHash('sha256').update(JSON.stringify(sorted), 'utf8').digest('base64url');
}

const jsonBytes = (s: string) => Buffer.byteLength(JSON.stringify(s), 'utf8');

/**
 * The groups a session token carries for a user in `groups`.
 *
 * Guaranteed: every group of the user that the policy names is kept (a deny rule on a group must
 * still see it), else SessionTooLargeError is thrown, never a shortened list; then the groups
 * PAYLOAD_GROUPS selects are added in the user's order while the JSON of the list stays within
 * MAX_TOKEN_GROUP_BYTES; the result keeps the user's order and has no duplicates.
 * Not checked: that group names are non-empty strings (the authenticators' job).
 */
export function selectTokenGroups(groups: readonly string[], selection: GroupSelection): SelectedGroups {
  const distinct = [...new Set(groups)];
  const keep = new Set<string>();
  let bytes = 2; // "[]"
  let needed = 0;
  for (const g of distinct) {
    if (!selection.policyGroups.has(g)) continue;
    bytes += jsonBytes(g) + (needed > 0 ? 1 : 0);
    needed++;
    keep.add(g);
  }
  if (bytes > MAX_TOKEN_GROUP_BYTES) throw new SessionTooLargeError(needed, bytes);
  let overBudget = 0;
  for (const g of distinct) {
    if (keep.has(g) || !payloadSelects(selection.payload, g)) continue;
    const extra = jsonBytes(g) + (keep.size > 0 ? 1 : 0);
    if (bytes + extra > MAX_TOKEN_GROUP_BYTES) {
      overBudget++;
      continue;
    }
    bytes += extra;
    keep.add(g);
  }
  const kept = distinct.filter((g) => keep.has(g));
  return { groups: kept, filtered: kept.length < distinct.length, count: distinct.length, digest: groupsDigest(distinct), overBudget };
}
