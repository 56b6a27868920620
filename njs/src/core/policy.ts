/**
 * Evaluates a compiled access policy (see policy-contract.ts) for one request. Pure and written in the
 * njs 0.7.9 subset (no class, destructuring, spread, for-of, Map/Set): the gate runs it on every request.
 * Inside the gate the compiled policy is a preloaded object: frozen and without prototypes, so no
 * method is ever called on its arrays or objects (indexes, lengths and property reads only).
 *
 * Cost: one exact-map lookup, one prefix-map lookup per '/' in the path (longest first), then the regex
 * rules, which are linear in their number. Candidate lists are sorted by priority and a list is left as
 * soon as its next rule cannot beat the best match so far, so the number of rules examined does not
 * grow with the size of the policy (only with rules sharing the same path).
 */
import type {
  AccessDecision,
  GatePolicy,
  AccessRequest,
  CompiledConditions,
  CompiledPolicy,
  CompiledRule,
  CompiledTimeCondition,
  CompiledZone,
} from './policy-contract.js';
import { COMPILED_POLICY_VERSION, POLICY_DEFAULT_RULE, POLICY_HORIZON_RULE } from './policy-contract.js';
import { isPreloadedList } from './gate-config.js';
import { isJsonArray, isMutableUsernameSource, qualifiedUserId } from './session-contract.js';

// Regexes are built from the compiled sources only when a regex rule is reached. njs re-runs module
// code for each request, so this cache lives for one request there and for the process under Node.
// Created on first use (an object literal: `Object.create` alone costs ~2,600 CPU instructions per
// request in njs 0.7.9, regex rules or not). Keys carry a '/' prefix, so a rule whose source is
// 'toString' or 'constructor' never finds Object's member here.
let regexCache: { [key: string]: RegExp } | null = null;

/** Outcome of matching one rule: 0 no, 1 yes, 2 the time table ran out (fail closed). */
const NO = 0;
const YES = 1;
const HORIZON = 2;

/**
 * Decides one request.
 *
 * Guaranteed:
 * - the matching rule with the lowest priority number decides (ties, which the compiler refuses for
 *   overlapping rules, go to the rule listed first); no match → `compiled.default`;
 * - the path is compared lower-cased; prefix rules match only at '/' boundaries; exact rules ignore
 *   one trailing slash;
 * - identity conditions (groups, users, claims) never match an anonymous request (claims === null);
 * - `users` entries match policyUserId(claims) (source-qualified: `local:kirk`, `oidc:<sub>`), so an
 *   OIDC account whose username is `kirk` is not the local `kirk`;
 * - `email_domain` matches only when the token says `email_verified: true`;
 * - `public` is true only when a rule marked public decided;
 * - a time condition evaluated outside the compiled horizon denies (rule 'policy-horizon-expired');
 * - it never throws on odd input (unparsable address, non-string claims): such conditions do not match.
 *
 * Not checked here: that the path is nginx-normalised (pass $uri, never $request_uri), that the claims
 * were verified, or that `compiled` is well formed (the compiler's job). Whether an anonymous, non-public
 * result needs a login is the caller's choice: `default` never exempts a request from logging in.
 */
export function decideAccess(compiled: CompiledPolicy, req: AccessRequest): AccessDecision {
  return decideAccessFor(compiled, req.method, req.path, req.claims, req.remoteAddr, req.now);
}

/**
 * decideAccess with the request's fields as arguments: what the gate calls on every request, where
 * building the request object alone costs ~0.4 µs in njs. Same guarantees as decideAccess.
 */
export function decideAccessFor(
  compiled: CompiledPolicy,
  method: string,
  requestPath: string,
  claims: { [claim: string]: unknown } | null,
  remoteAddr: string,
  now: number,
): AccessDecision {
  const path = requestPath.toLowerCase();
  const rules = compiled.rules;
  const prefixMap = compiled.prefix;
  let best = -1;
  let bestPriority = Infinity;
  let examined = 0;
  let horizonHit = false;

  // The candidate lists, longest path first: exact (one trailing slash ignored: `/admin/` is `/admin`
  // to most upstreams), the path itself as a prefix, every '/'-bounded prefix (native lastIndexOf;
  // a charCodeAt loop costs ~0.1 µs per character in njs), then '/', and last the regex rules (whose
  // paths are checked per rule). Walked one at a time without collecting them into an array (an
  // allocation per request).
  const last = path.length - 1;
  let slash = path.lastIndexOf('/');
  let stage = 0;
  let regexStage = false;
  for (;;) {
    let list: number[] | undefined;
    if (stage === 0) {
      list = compiled.exact[last > 0 && path.charCodeAt(last) === 47 ? path.slice(0, -1) : path];
      stage = 1;
    } else if (stage === 1) {
      if (path !== '/') list = prefixMap[path];
      stage = 2;
    } else if (stage === 2) {
      if (slash > 0) {
        list = prefixMap[path.slice(0, slash)];
        slash = path.lastIndexOf('/', slash - 1);
      } else {
        list = prefixMap['/'];
        stage = 3;
      }
    } else if (stage === 3) {
      list = compiled.regex;
      regexStage = true;
      stage = 4;
    } else {
      break;
    }
    if (list === undefined) continue;
    // Sorted by priority: stop at the first rule that matches or cannot win.
    for (let k = 0; k < list.length; k++) {
      const index = list[k];
      const rule = rules[index];
      if (rule.priority > bestPriority || (rule.priority === bestPriority && index > best)) break;
      examined++;
      // Method and conditions inline: a function call costs ~0.1-0.2 µs in njs. `=== true`: a method
      // named like an Object.prototype member ('constructor') must not match.
      const methods = rule.methods;
      if (methods !== undefined && methods[method] !== true) continue;
      if (regexStage && !regexMatches(rule, path)) continue;
      const c = rule.conditions;
      const m = c === undefined ? YES : conditionsMatch(compiled, c, claims, remoteAddr, now);
      if (m === HORIZON) horizonHit = true;
      if (m === YES) {
        best = index;
        bestPriority = rule.priority;
        break;
      }
    }
  }

  // A rule we could not evaluate might have outranked the winner: fail closed rather than guess.
  if (horizonHit) return { decision: 'deny', public: false, rule: POLICY_HORIZON_RULE, examined: examined };
  if (best < 0) return { decision: compiled.default, public: false, rule: POLICY_DEFAULT_RULE, examined: examined };
  const winner = rules[best];
  return { decision: winner.decision, public: winner.public, rule: winner.id, examined: examined };
}

/** True when the (lower-cased) path matches a regex rule's pattern. */
function regexMatches(rule: CompiledRule, path: string): boolean {
  // Building a RegExp costs a few µs in njs on every request; a required literal rules most paths out first.
  if (rule.literal !== undefined && path.indexOf(rule.literal) < 0) return false;
  const source = rule.regex as string;
  if (regexCache === null) regexCache = {};
  let re = regexCache['/' + source];
  if (re === undefined) {
    re = new RegExp(source, 'i');
    regexCache['/' + source] = re;
  }
  // search, not test: in njs 0.7.9 a failing RegExp test/exec allocates ~20 KB and costs ~3 µs per
  // call; search costs ~0.3 µs. Same result here (no 'g'/'y' flag, so lastIndex plays no part).
  return path.search(re) >= 0;
}

function conditionsMatch(
  compiled: CompiledPolicy,
  c: CompiledConditions,
  claims: { [claim: string]: unknown } | null,
  remoteAddr: string,
  now: number,
): number {
  if (c.groups !== undefined) {
    if (claims === null || !anyIn(claims.groups, c.groups, false)) return NO;
  }
  if (c.users !== undefined) {
    if (claims === null || !scalarIn(policyUserId(claims), c.users, false)) return NO;
  }
  if (c.claims !== undefined) {
    if (claims === null) return NO;
    for (let i = 0; i < c.claims.length; i++) {
      const cc = c.claims[i];
      if (cc.name === 'email_domain') {
        // Only an address the source vouches for: a provider may let users set any `email`.
        if (claims.email_verified !== true || !anyIn(emailDomain(claims.email), cc.values, true)) return NO;
      } else if (!anyIn(claims[cc.name], cc.values, false)) {
        return NO;
      }
    }
  }
  if (c.cidr4 !== undefined || c.cidr6 !== undefined) {
    if (!addressMatches(remoteAddr, c.cidr4, c.cidr6)) return NO;
  }
  if (c.time !== undefined) return timeMatches(compiled, c.time, now);
  return YES;
}

/** True when `value` (a scalar, or an array of scalars) equals one of `accepted`, compared as strings. */
function anyIn(value: unknown, accepted: string[], lower: boolean): boolean {
  if (isJsonArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (scalarIn(value[i], accepted, lower)) return true;
    }
    return false;
  }
  return scalarIn(value, accepted, lower);
}

function scalarIn(value: unknown, accepted: string[], lower: boolean): boolean {
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'number' || typeof value === 'boolean') s = String(value);
  else return false;
  if (lower) s = s.toLowerCase();
  // A loop, not accepted.indexOf: nginx's preloaded objects have no prototype chain (njs docs), so
  // arrays of the compiled policy have no methods inside the gate.
  for (let i = 0; i < accepted.length; i++) {
    if (accepted[i] === s) return true;
  }
  return false;
}

/**
 * The id `users:` entries are compiled to (see compile-policy): qualifiedUserId, lower-cased unless the
 * source's id ends in `sub` (OIDC/Entra subject identifiers are case-sensitive). Undefined when a claim
 * it needs is missing or not a string: src and username, and for oidc/azure a non-empty sub.
 */
export function policyUserId(claims: { [claim: string]: unknown }): string | undefined {
  const src = claims.src;
  const username = claims.username;
  const sub = claims.sub;
  if (typeof src !== 'string' || typeof username !== 'string') return undefined;
  if (isMutableUsernameSource(src)) return typeof sub === 'string' && sub !== '' ? qualifiedUserId(src, username, sub) : undefined;
  return qualifiedUserId(src, username, '').toLowerCase();
}

/**
 * True when a rule that names `methods` covers `requestPath` (whatever its conditions), i.e. the
 * decision may depend on the method. The gate asks only when the query carries a method override
 * (`_method`), so this walk is off the common path.
 */
export function methodRulesCover(compiled: CompiledPolicy, requestPath: string): boolean {
  const path = requestPath.toLowerCase();
  const last = path.length - 1;
  if (anyWithMethods(compiled, compiled.exact[last > 0 && path.charCodeAt(last) === 47 ? path.slice(0, -1) : path], null)) return true;
  if (path !== '/' && anyWithMethods(compiled, compiled.prefix[path], null)) return true;
  let slash = path.lastIndexOf('/');
  while (slash > 0) {
    if (anyWithMethods(compiled, compiled.prefix[path.slice(0, slash)], null)) return true;
    slash = path.lastIndexOf('/', slash - 1);
  }
  return anyWithMethods(compiled, compiled.prefix['/'], null) || anyWithMethods(compiled, compiled.regex, path);
}

function anyWithMethods(compiled: CompiledPolicy, list: number[] | undefined, regexPath: string | null): boolean {
  if (list === undefined) return false;
  for (let k = 0; k < list.length; k++) {
    const rule = compiled.rules[list[k]];
    if (rule.methods !== undefined && (regexPath === null || regexMatches(rule, regexPath))) return true;
  }
  return false;
}

function emailDomain(email: unknown): string | undefined {
  if (typeof email !== 'string') return undefined;
  const at = email.lastIndexOf('@');
  if (at < 1 || at === email.length - 1) return undefined;
  return email.slice(at + 1);
}

// ---------------------------------------------------------------------------------------------
// Source addresses (no BigInt in njs: IPv4 as one uint32, IPv6 as eight 16-bit groups)
// ---------------------------------------------------------------------------------------------

function addressMatches(addr: string, cidr4: number[][] | undefined, cidr6: number[][] | undefined): boolean {
  if (typeof addr !== 'string') return false;
  if (addr.indexOf(':') < 0) {
    const v4 = parseIPv4(addr);
    return v4 >= 0 && cidr4 !== undefined && inCidr4(v4, cidr4);
  }
  const groups = parseIPv6(addr);
  if (groups === null) return false;
  if (cidr6 !== undefined && inCidr6(groups, cidr6)) return true;
  // An IPv4-mapped address (::ffff:a.b.c.d, seen on dual-stack listeners) also matches IPv4 ranges.
  if (cidr4 !== undefined && groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return inCidr4(groups[6] * 65536 + groups[7], cidr4);
  }
  return false;
}

function inCidr4(ip: number, cidrs: number[][]): boolean {
  for (let i = 0; i < cidrs.length; i++) {
    const span = Math.pow(2, 32 - cidrs[i][1]);
    if (Math.floor(ip / span) === Math.floor(cidrs[i][0] / span)) return true;
  }
  return false;
}

function inCidr6(groups: number[], cidrs: number[][]): boolean {
  for (let i = 0; i < cidrs.length; i++) {
    const c = cidrs[i];
    const len = c[8];
    let ok = true;
    for (let g = 0; g < 8 && ok; g++) {
      const bits = len - g * 16;
      if (bits <= 0) break;
      if (bits >= 16) ok = groups[g] === c[g];
      else {
        const span = Math.pow(2, 16 - bits);
        ok = Math.floor(groups[g] / span) === Math.floor(c[g] / span);
      }
    }
    if (ok) return true;
  }
  return false;
}

/** Dotted-quad to uint32, or -1. Strict: four decimal parts 0-255, no leading zeros. */
export function parseIPv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return -1;
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p.charCodeAt(0) === 48)) return -1;
    let v = 0;
    for (let j = 0; j < p.length; j++) {
      const d = p.charCodeAt(j) - 48;
      if (d < 0 || d > 9) return -1;
      v = v * 10 + d;
    }
    if (v > 255) return -1;
    n = n * 256 + v;
  }
  return n;
}

/** IPv6 text (with '::' and an optional dotted-quad tail) to eight 16-bit groups, or null. */
export function parseIPv6(s: string): number[] | null {
  if (s.length < 2 || s.length > 45) return null;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return null;
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const tail = dbl >= 0 ? s.slice(dbl + 2) : '';
  const a = parseGroups(head);
  const b = parseGroups(tail);
  if (a === null || b === null) return null;
  const total = a.length + b.length;
  if (dbl < 0 ? total !== 8 : total > 7) return null;
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) out.push(a[i]);
  for (let i = total; i < 8; i++) out.push(0);
  for (let i = 0; i < b.length; i++) out.push(b[i]);
  return out;
}

function parseGroups(s: string): number[] | null {
  const out: number[] = [];
  if (s === '') return out;
  const parts = s.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i === parts.length - 1 && p.indexOf('.') >= 0) {
      const v4 = parseIPv4(p);
      if (v4 < 0) return null;
      out.push(Math.floor(v4 / 65536), v4 % 65536);
      continue;
    }
    if (p.length === 0 || p.length > 4) return null;
    let v = 0;
    for (let j = 0; j < p.length; j++) {
      const d = hexDigit(p.charCodeAt(j));
      if (d < 0) return null;
      v = v * 16 + d;
    }
    out.push(v);
  }
  return out;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Time windows (no Intl in njs: the compiler ships a UTC-offset table per zone)
// ---------------------------------------------------------------------------------------------

function timeMatches(compiled: CompiledPolicy, t: CompiledTimeCondition, now: number): number {
  const zone = compiled.zones[t.zone];
  if (zone === undefined || now < compiled.horizonStart || now >= compiled.horizonEnd) return HORIZON;
  const local = now + zoneOffset(zone, now);
  const days = Math.floor(local / 86400);
  const minute = Math.floor((local - days * 86400) / 60);
  const weekday = (((days + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
  if (t.from < t.to) return minute >= t.from && minute < t.to && dayIn(t.days, weekday) ? YES : NO;
  // Crosses midnight: the evening part belongs to today, the morning part to the window that began yesterday.
  if (minute >= t.from) return dayIn(t.days, weekday) ? YES : NO;
  if (minute < t.to) return dayIn(t.days, (weekday + 6) % 7) ? YES : NO;
  return NO;
}

function dayIn(mask: number, weekday: number): boolean {
  return Math.floor(mask / Math.pow(2, weekday)) % 2 === 1;
}

/** Offset (seconds east of UTC) in force at `now`, by binary search over the zone's transitions. */
export function zoneOffset(zone: CompiledZone, now: number): number {
  const starts = zone.starts;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (starts[mid] <= now) lo = mid;
    else hi = mid - 1;
  }
  return zone.offsets[lo];
}

/**
 * Cheap per-request shape check of the preloaded `gate_policy` (the compiler validates it properly):
 * returns null when usable, else a short description. A missing or broken policy file must deny
 * (gate-error), never fall back to "no policy".
 */
export function gatePolicyProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'gate_policy is not an object';
  const p = value as { [field: string]: unknown };
  if (p.version !== COMPILED_POLICY_VERSION) return 'gate_policy has an unknown version (recompile the policy)';
  if (p.off === true) return null;
  if (p.default !== 'allow' && p.default !== 'deny') return 'gate_policy.default must be allow or deny';
  if (!isPreloadedList(p.rules) || !isPreloadedList(p.regex)) return 'gate_policy.rules and .regex must be arrays';
  if (typeof p.exact !== 'object' || p.exact === null || typeof p.prefix !== 'object' || p.prefix === null) return 'gate_policy.exact and .prefix must be objects';
  if (typeof p.zones !== 'object' || p.zones === null) return 'gate_policy.zones must be an object';
  if (typeof p.horizonStart !== 'number' || typeof p.horizonEnd !== 'number') return 'gate_policy horizon must be numbers';
  return null;
}

/**
 * The section of `policy` that decides the requests of app `app` ('' is the default, unnamed app:
 * the top level), or null when the policy has no section of that name (the gate refuses the request
 * as `app-unknown`). One property read: the cost of apps on the hot path.
 * Not checked: the section's shape (the compiler writes it), nor the name's syntax.
 */
export function appSection(policy: CompiledPolicy, app: string): CompiledPolicy | null {
  if (app === '') return policy;
  const apps = policy.apps;
  if (apps === undefined) return null;
  const section = apps[app];
  // typeof: under Node a name like 'constructor' finds Object.prototype's member; nginx's preloaded
  // objects have no prototype.
  return typeof section === 'object' && section !== null ? section : null;
}

/** True when the policy is the "no policy configured" marker. */
export function isPolicyOff(policy: GatePolicy): boolean {
  return (policy as { off?: unknown }).off === true;
}
