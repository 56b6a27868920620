/**
 * The access-policy contract: the policy file operators write (source form, JSON or YAML) and the
 * compiled form the njs gate loads once per config load with `js_preload_object`. The compiler
 * (auth-service/src/policy/compile-policy.ts) turns one into the other; the evaluator
 * (njs/src/core/policy.ts) reads only the compiled form. Types only, plus constants: no Node or njs APIs.
 *
 * Path matching (both forms): rules are matched against nginx's normalised `$uri` (no query string,
 * `..`/`//`/percent-escapes already resolved by nginx), compared case-insensitively: the compiler
 * folds rule paths and the gate folds the request path with the same code (request-path.ts
 * foldCase), because upstreams such as IIS/Tableau on
 * Windows treat `/Federation` and `/FEDERATION` (and `/Café`, `/CAFÉ`) as the same resource and a case
 * variant must not slip past a deny rule.
 */

export type PolicyDecision = 'allow' | 'deny';

export type PolicyDay = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

/** Weekday names in the order of JavaScript's getUTCDay() (0 = Sunday). */
export const POLICY_DAYS: PolicyDay[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

// ---------------------------------------------------------------------------------------------
// Source form (what operators write)
// ---------------------------------------------------------------------------------------------

/**
 * Exactly one key:
 * - `exact`: the whole path, e.g. `/health`; one trailing slash is ignored (on the rule and on the
 *   request), because most upstreams serve `/health/` as `/health`.
 * - `prefix`: `/federation` covers `/federation` and `/federation/...`, never `/federationX`. A trailing
 *   slash is normalised away; `/` covers everything.
 * - `regex`: a JavaScript/PCRE pattern searched (not anchored unless you write `^`/`$`) in the
 *   folded path, with the `i` flag. Regex rules are evaluated linearly; keep them few. Patterns that
 *   can backtrack catastrophically are refused by the compiler.
 */
export type PolicyPathSource = { exact: string } | { prefix: string } | { regex: string };

/** Claim value(s) accepted by a `claims` condition. Scalars are compared as strings. */
export type PolicyClaimValueSource = string | number | boolean | (string | number | boolean)[];

export interface PolicyTimeSource {
  /** Days the window *starts* on; all seven when omitted. */
  days?: PolicyDay[];
  /** 'HH:MM' local time, inclusive. */
  from: string;
  /** 'HH:MM' local time, exclusive. `to` < `from` means the window crosses midnight. */
  to: string;
  /** IANA time zone name, e.g. 'Europe/Berlin'. */
  timeZone: string;
}

export interface PolicyConditionsSource {
  /** Any of these groups (exact, case-sensitive match against the `groups` claim); `alias:<name>` names a group_aliases entry. */
  groups?: string[];
  /**
   * Any of these users, as source-qualified ids (session-contract.ts qualifiedUserId): `local:kirk`
   * (a bare `kirk` means `local:kirk`), `tableau:kirk`, `custom:<module-id>:<username>` (usernames
   * compared case-insensitively), `oidc:<sub>`, `azure:<sub>` (the provider's subject identifier,
   * case-sensitive: `preferred_username` and `email` can be changed by users or tenant admins).
   */
  users?: string[];
  /**
   * Every listed claim must equal one of its values (an array claim matches if any element does).
   * `email_domain` is derived: the part of the `email` claim after the last '@', compared
   * case-insensitively, and only when the token's `email_verified` claim is true.
   */
  claims?: { [claim: string]: PolicyClaimValueSource };
  /** Source address (nginx $remote_addr) in any of these CIDRs, IPv4 or IPv6. */
  sourceIps?: string[];
  time?: PolicyTimeSource;
}

export interface PolicyRuleSource {
  /** Name used in logs and in the decision; unique. */
  id: string;
  path: PolicyPathSource;
  /** HTTP methods (upper-case); all methods when omitted. `GET` also covers `HEAD`. */
  methods?: string[];
  /** Integer; lower wins. Two overlapping rules may not share a priority. */
  priority: number;
  decision: PolicyDecision;
  /** No session needed: the rule applies to anonymous requests. Cannot have identity conditions. */
  public?: boolean;
  conditions?: PolicyConditionsSource;
}

export interface PolicySource {
  /** Decision when no rule matches; a missing default means deny. */
  default?: PolicyDecision;
  /**
   * Readable names for groups the identity source sends as ids (Entra object ids, from the ID token
   * and from Graph alike): alias → id. A `groups` entry (or a `claims.groups` value) written
   * `alias:<name>` compiles to that id; an unknown alias is a compile error.
   */
  group_aliases?: { [alias: string]: string };
  rules?: PolicyRuleSource[];
  /**
   * Applications (issue 12): name → its own `default` and `rules`, for the locations whose nginx
   * config says `set $gate_app NAME;`. The top-level `default`/`rules` decide the default, unnamed
   * app. Names: lower-case letters, digits, '_' and '-', starting with a letter or digit, at most 32.
   */
  apps?: { [app: string]: { default?: PolicyDecision; rules?: PolicyRuleSource[] } };
}

// ---------------------------------------------------------------------------------------------
// Compiled form (plain JSON: objects, arrays, strings, numbers, booleans; no null)
// ---------------------------------------------------------------------------------------------

export const COMPILED_POLICY_VERSION = 1;

/** Special rule names in decisions: no rule matched, or a time table ran out. */
export const POLICY_DEFAULT_RULE = 'default';
export const POLICY_HORIZON_RULE = 'policy-horizon-expired';

export interface CompiledClaimCondition {
  /** Claim name; 'email_domain' is derived from 'email'. */
  name: string;
  /** Accepted values as strings (lower-cased for email_domain). */
  values: string[];
}

export interface CompiledTimeCondition {
  /** Bit i set = window may start on weekday i (0 = Sunday). */
  days: number;
  /** Minutes after local midnight; `from` inclusive, `to` exclusive; `to` < `from` crosses midnight. */
  from: number;
  to: number;
  /** Key into CompiledPolicy.zones. */
  zone: string;
}

export interface CompiledConditions {
  groups?: string[];
  /** Source-qualified user ids (policyUserId form): lower-cased, except the `<sub>` of oidc/azure. */
  users?: string[];
  claims?: CompiledClaimCondition[];
  /** [network as uint32, prefix length]. */
  cidr4?: number[][];
  /** [g0..g7 (16-bit groups of the network), prefix length]: 9 numbers each. */
  cidr6?: number[][];
  time?: CompiledTimeCondition;
}

export interface CompiledRule {
  id: string;
  priority: number;
  decision: PolicyDecision;
  public: boolean;
  /** Upper-case method → true; absent means every method. */
  methods?: { [method: string]: boolean };
  /** Regex source (regex rules only); the evaluator builds `new RegExp(regex, 'i')` lazily. */
  regex?: string;
  /**
   * Regex rules only, optional: a lower-case string every matching path contains. When the path
   * lacks it, the rule cannot match and the RegExp is never built (cheap prefilter).
   */
  literal?: string;
  /** Absent when the rule has no conditions. */
  conditions?: CompiledConditions;
}

/**
 * UTC-offset table of one zone: `offsets[i]` (seconds east of UTC) applies from `starts[i]` (epoch
 * seconds) until `starts[i + 1]`. `starts[0]` is the horizon start. Valid only inside the horizon.
 */
export interface CompiledZone {
  starts: number[];
  offsets: number[];
}

export interface CompiledPolicy {
  version: number;
  default: PolicyDecision;
  /** Epoch seconds the compiler was told was "now". */
  compiledAt: number;
  /** Epoch seconds: the zone tables are exact inside [horizonStart, horizonEnd). */
  horizonStart: number;
  horizonEnd: number;
  /** All rules; indexes below point into this array. */
  rules: CompiledRule[];
  /** Lower-cased exact path (no trailing slash, except '/') → rule indexes sorted by priority. */
  exact: { [path: string]: number[] };
  /** Lower-cased prefix (no trailing slash, except '/') → rule indexes sorted by priority. */
  prefix: { [prefix: string]: number[] };
  /** Regex rule indexes sorted by priority (evaluated linearly). */
  regex: number[];
  zones: { [zone: string]: CompiledZone };
  /**
   * Per-app sections (PolicySource.apps), each a whole compiled policy of its own (its own default,
   * rules, indexes and zones; never an `apps` of its own). Absent when the source has no apps.
   */
  apps?: { [app: string]: CompiledPolicy };
}

/** What a valid app name looks like (PolicySource.apps, `set $gate_app NAME;`, X-Gateway-App). */
export const APP_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,31}$';

/**
 * What nginx preloads as `gate_policy` when no policy file is configured (POLICY_FILE unset): the
 * gate then allows every valid session, as without a policy, and skips path checks.
 */
export interface PolicyOff {
  version: number;
  off: true;
}

/** The `gate_policy` object (runtime/policy.json): a compiled policy, or policy off. */
export type GatePolicy = CompiledPolicy | PolicyOff;

/** What the gate needs to know about a request to decide it. */
export interface AccessRequest {
  method: string;
  /** nginx's normalised $uri (not $request_uri: no query string, escapes resolved). */
  path: string;
  /** Verified session claims, or null for an anonymous request. */
  claims: { [claim: string]: unknown } | null;
  /** nginx's $remote_addr. */
  remoteAddr: string;
  /** Seconds since the epoch. */
  now: number;
}

export interface AccessDecision {
  decision: PolicyDecision;
  /** True when a `public` rule decided: no session is needed (allow) or asked for (deny). */
  public: boolean;
  /** The deciding rule's id, 'default', or 'policy-horizon-expired'. */
  rule: string;
  /** Candidate rules looked at (for tests and bench; it must stay small whatever the policy size). */
  examined: number;
}
