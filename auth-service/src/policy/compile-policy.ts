/**
 * Validates an access-policy file and compiles it into the JSON the njs gate preloads
 * (types and matching semantics: njs/src/core/policy-contract.ts; evaluator: njs/src/core/policy.ts).
 * Every problem is collected and reported at once, each naming the rule and field.
 */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { COMPILED_POLICY_VERSION, POLICY_DAYS } from '../../../njs/src/core/policy-contract.js';
import type {
  CompiledConditions,
  CompiledPolicy,
  CompiledRule,
  CompiledZone,
  PolicyDecision,
} from '../../../njs/src/core/policy-contract.js';

/** Zone tables cover [now - 1 year, now + 5 years); `lintCompiledPolicy` warns in the last 180 days. */
export const HORIZON_PAST_SECONDS = 366 * 86400;
export const HORIZON_FUTURE_SECONDS = 5 * 365 * 86400;
export const HORIZON_WARN_SECONDS = 180 * 86400;

export type CompileResult =
  | { ok: true; compiled: CompiledPolicy; warnings: string[] }
  | { ok: false; errors: string[] };

/** Reads a policy file: YAML for .yaml/.yml, JSON for .json. Throws on unreadable or unparsable files. */
export function loadPolicyFile(path: string): unknown {
  const lower = path.toLowerCase();
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return parseYaml(fs.readFileSync(path, 'utf8'));
  if (lower.endsWith('.json')) return JSON.parse(fs.readFileSync(path, 'utf8'));
  throw new Error(`policy file must end in .json, .yaml or .yml: ${path}`);
}

const decision = z.enum(['allow', 'deny']);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const nonEmptyStrings = z.array(z.string().min(1)).min(1);

const ruleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, . _ - (max 64), starting with a letter or digit'),
  path: z.union([
    z.strictObject({ exact: z.string() }),
    z.strictObject({ prefix: z.string() }),
    z.strictObject({ regex: z.string().min(1) }),
  ]),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'upper-case HTTP method')).min(1).optional(),
  priority: z.number().int().min(0).max(1_000_000_000),
  decision,
  public: z.boolean().optional(),
  conditions: z
    .strictObject({
      groups: nonEmptyStrings.optional(),
      users: nonEmptyStrings.optional(),
      claims: z.record(z.string().min(1), z.union([scalar, z.array(scalar).min(1)])).optional(),
      sourceIps: nonEmptyStrings.optional(),
      time: z
        .strictObject({
          days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).min(1).optional(),
          from: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "'HH:MM' (00:00-23:59)"),
          to: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "'HH:MM' (00:00-23:59)"),
          timeZone: z.string().min(1),
        })
        .optional(),
    })
    .optional(),
});
type RuleInput = z.infer<typeof ruleSchema>;

const topSchema = z.strictObject({ default: decision.optional(), rules: z.array(z.unknown()).optional() });

function issuesToErrors(where: string, error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const at = i.path.length > 0 ? `${where}.${i.path.join('.')}` : where;
    return `${at}: ${i.message}`;
  });
}

interface Indexed {
  index: number;
  rule: RuleInput;
  kind: 'exact' | 'prefix' | 'regex';
  key: string;
  methods: { [m: string]: boolean } | undefined;
}

/**
 * Validates `source` and compiles it. `now` (epoch seconds) anchors the time-zone horizon.
 *
 * Checked: unknown keys anywhere, decisions, rule ids (format, duplicates), paths (leading '/', no
 * query/fragment/'%'/backslash/NUL, no '.'/'..' or empty segments nginx would have removed), regex
 * syntax, methods, priorities, overlapping rules at equal priority, CIDRs (IPv4/IPv6, host bits),
 * time windows and IANA zones, and public rules carrying identity conditions (anyone can drop a cookie).
 * Not checked: that a regex behaves the same under njs's PCRE as under JavaScript for exotic syntax.
 */
export function compilePolicy(source: unknown, options: { now: number }): CompileResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (typeof source !== 'object' || source === null || Array.isArray(source)) {
    return { ok: false, errors: ["policy: must be a mapping with 'default' and 'rules'"] };
  }
  // Top-level problems are reported together with every rule's, not instead of them.
  const top = topSchema.safeParse(source);
  if (!top.success) errors.push(...issuesToErrors('policy', top.error));
  const topInput = source as { default?: unknown; rules?: unknown };
  const defaultDecision: PolicyDecision = topInput.default === 'allow' ? 'allow' : 'deny';
  if (topInput.default === undefined) warnings.push("policy: no 'default' given; requests matching no rule are denied");

  const now = Math.floor(options.now);
  const horizonStart = now - HORIZON_PAST_SECONDS;
  const horizonEnd = now + HORIZON_FUTURE_SECONDS;
  const zones: { [zone: string]: CompiledZone } = {};
  const rules: CompiledRule[] = [];
  const indexed: Indexed[] = [];
  const seenIds = new Map<string, number>();
  const raw: unknown[] = Array.isArray(topInput.rules) ? topInput.rules : [];

  raw.forEach((input, index) => {
    const parsed = ruleSchema.safeParse(input);
    const idGuess = typeof (input as { id?: unknown })?.id === 'string' ? (input as { id: string }).id : '';
    const where = `rules[${index}]${idGuess ? ` (${idGuess})` : ''}`;
    if (!parsed.success) {
      errors.push(...issuesToErrors(where, parsed.error));
      return;
    }
    const rule = parsed.data;
    const before = errors.length;
    const previous = seenIds.get(rule.id);
    if (previous !== undefined) errors.push(`${where}.id: duplicate rule id, first used by rules[${previous}]`);
    else seenIds.set(rule.id, index);

    let kind: Indexed['kind'];
    let key: string;
    if ('exact' in rule.path) {
      kind = 'exact';
      key = rule.path.exact.toLowerCase();
      checkPath(`${where}.path.exact`, key, errors);
      // The gate ignores one trailing slash on exact paths: '/admin/' is '/admin'.
      if (key.length > 1 && key.endsWith('/')) key = key.slice(0, -1);
    } else if ('prefix' in rule.path) {
      kind = 'prefix';
      key = rule.path.prefix.toLowerCase();
      checkPath(`${where}.path.prefix`, key, errors);
      while (key.length > 1 && key.endsWith('/')) key = key.slice(0, -1);
    } else {
      kind = 'regex';
      key = rule.path.regex;
      try {
        new RegExp(key, 'i');
      } catch (e) {
        errors.push(`${where}.path.regex: invalid regular expression (${(e as Error).message})`);
      }
    }

    let methods: { [m: string]: boolean } | undefined;
    if (rule.methods) {
      methods = {};
      for (const m of rule.methods) {
        methods[m] = true;
        // HEAD is GET without a body: a rule about GET must not be dodged with HEAD.
        if (m === 'GET') methods.HEAD = true;
      }
    }

    const conditions = compileConditions(where, rule, { horizonStart, horizonEnd, zones }, errors);
    if (rule.public && rule.conditions && (rule.conditions.groups || rule.conditions.users || rule.conditions.claims)) {
      errors.push(`${where}.public: a public rule cannot have groups/users/claims conditions (no session is read)`);
    }
    if (errors.length > before) return;

    const compiled: CompiledRule = { id: rule.id, priority: rule.priority, decision: rule.decision, public: rule.public === true };
    if (methods) compiled.methods = methods;
    if (kind === 'regex') {
      compiled.regex = key;
      const literal = requiredLiteral(key);
      if (literal !== undefined) compiled.literal = literal;
    }
    if (conditions) compiled.conditions = conditions;
    indexed.push({ index: rules.length, rule, kind, key, methods });
    rules.push(compiled);
  });

  checkOverlaps(indexed, errors);
  if (errors.length > 0) return { ok: false, errors };

  const order = (a: number, b: number) => rules[a].priority - rules[b].priority || a - b;
  const exact: { [k: string]: number[] } = {};
  const prefix: { [k: string]: number[] } = {};
  const regex: number[] = [];
  for (const e of indexed) {
    if (e.kind === 'regex') {
      regex.push(e.index);
      continue;
    }
    const map = e.kind === 'exact' ? exact : prefix;
    (map[e.key] ??= []).push(e.index);
  }
  for (const k of Object.keys(exact)) exact[k].sort(order);
  for (const k of Object.keys(prefix)) prefix[k].sort(order);
  regex.sort(order);
  if (regex.length > 20) warnings.push(`policy: ${regex.length} regex rules; regex rules are checked one by one on every request`);

  const compiled: CompiledPolicy = {
    version: COMPILED_POLICY_VERSION,
    default: defaultDecision,
    compiledAt: now,
    horizonStart,
    horizonEnd,
    rules,
    exact,
    prefix,
    regex,
    zones,
  };
  return { ok: true, compiled, warnings };
}

/** Warnings about a compiled policy at time `now`: mainly a zone horizon that is running out. */
export function lintCompiledPolicy(compiled: CompiledPolicy, now: number): string[] {
  const out: string[] = [];
  if (Object.keys(compiled.zones).length === 0) return out;
  if (now >= compiled.horizonEnd) {
    out.push('policy: the time-zone tables have run out; time conditions now deny. Recompile the policy and reload nginx');
  } else if (compiled.horizonEnd - now < HORIZON_WARN_SECONDS) {
    const days = Math.floor((compiled.horizonEnd - now) / 86400);
    out.push(`policy: the time-zone tables run out in ${days} days; recompile the policy and reload nginx`);
  }
  return out;
}

function checkPath(where: string, p: string, errors: string[]): void {
  if (!p.startsWith('/')) errors.push(`${where}: must start with '/'`);
  if (/[?#%;\\\u0000-\u001f\u007f]/.test(p)) {
    errors.push(`${where}: must not contain '?', '#', '%', ';', '\\' or control characters (rules match nginx's decoded, normalised $uri, with ;params cut)`);
  }
  const segments = p.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '.' || s === '..') errors.push(`${where}: '.' and '..' segments never occur in a normalised path`);
    if (s === '' && i < segments.length - 1) errors.push(`${where}: '//' never occurs in a normalised path`);
  }
}

function compileConditions(
  where: string,
  rule: RuleInput,
  ctx: { horizonStart: number; horizonEnd: number; zones: { [zone: string]: CompiledZone } },
  errors: string[],
): CompiledConditions | undefined {
  const c = rule.conditions;
  if (!c) return undefined;
  const out: CompiledConditions = {};
  if (c.groups) out.groups = c.groups;
  if (c.users) out.users = c.users.map((u) => u.toLowerCase());
  if (c.claims) {
    out.claims = Object.entries(c.claims).map(([name, v]) => {
      const values = (Array.isArray(v) ? v : [v]).map(String);
      return { name, values: name === 'email_domain' ? values.map((s) => s.toLowerCase()) : values };
    });
  }
  if (c.sourceIps) {
    const cidr4: number[][] = [];
    const cidr6: number[][] = [];
    c.sourceIps.forEach((text, i) => {
      const r = parseCidr(text);
      if (typeof r === 'string') errors.push(`${where}.conditions.sourceIps.${i}: ${r} (got '${text}')`);
      else if (r.length === 2) cidr4.push(r);
      else cidr6.push(r);
    });
    if (cidr4.length) out.cidr4 = cidr4;
    if (cidr6.length) out.cidr6 = cidr6;
  }
  if (c.time) {
    const t = c.time;
    const from = minutes(t.from);
    const to = minutes(t.to);
    if (from === to) errors.push(`${where}.conditions.time: 'from' and 'to' are equal; the window would be empty`);
    let days = 0;
    for (const d of t.days ?? POLICY_DAYS) days |= 1 << POLICY_DAYS.indexOf(d);
    let zone: string | undefined;
    try {
      zone = new Intl.DateTimeFormat('en-US', { timeZone: t.timeZone }).resolvedOptions().timeZone;
    } catch {
      errors.push(`${where}.conditions.time.timeZone: unknown IANA time zone '${t.timeZone}'`);
    }
    if (zone !== undefined) {
      if (!ctx.zones[t.timeZone]) ctx.zones[t.timeZone] = buildZoneTable(t.timeZone, ctx.horizonStart, ctx.horizonEnd);
      out.time = { days, from, to, zone: t.timeZone };
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function minutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** [uint32, len] for IPv4, [g0..g7, len] for IPv6, or an error message. Host bits must be zero. */
export function parseCidr(text: string): number[] | string {
  const slash = text.indexOf('/');
  if (slash < 0) return "expected 'address/prefix-length'";
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return 'bad prefix length';
  const len = Number(lenText);
  if (!addr.includes(':')) {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
    if (!m || m.slice(1).some((p) => Number(p) > 255 || (p.length > 1 && p.startsWith('0')))) return 'bad IPv4 address';
    if (len > 32) return 'IPv4 prefix length must be 0-32';
    const n = m.slice(1).reduce((acc, p) => acc * 256 + Number(p), 0);
    if (n % 2 ** (32 - len) !== 0) return 'host bits are set (did you mean the network address?)';
    return [n, len];
  }
  const groups = parseIPv6Text(addr);
  if (!groups) return 'bad IPv6 address';
  if (len > 128) return 'IPv6 prefix length must be 0-128';
  for (let g = 0; g < 8; g++) {
    const bits = len - g * 16;
    if (bits >= 16) continue;
    const span = 2 ** (16 - Math.max(bits, 0));
    if (groups[g] % span !== 0) return 'host bits are set (did you mean the network address?)';
  }
  return [...groups, len];
}

function parseIPv6Text(addr: string): number[] | undefined {
  if (addr.includes('%')) return undefined;
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(p);
        if (!m || m.slice(1).some((x) => Number(x) > 255)) return undefined;
        out.push(Number(m[1]) * 256 + Number(m[2]), Number(m[3]) * 256 + Number(m[4]));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  const a = toGroups(halves[0]);
  const b = halves.length === 2 ? toGroups(halves[1]) : [];
  if (!a || !b) return undefined;
  if (halves.length === 1) return a.length === 8 ? a : undefined;
  if (a.length + b.length > 7) return undefined;
  return [...a, ...new Array(8 - a.length - b.length).fill(0), ...b];
}

/** Offset of `zone` from UTC at `t` (epoch seconds), in seconds, via Intl. */
function offsetAt(fmt: Intl.DateTimeFormat, t: number): number {
  const parts: { [k: string]: number } = {};
  for (const p of fmt.formatToParts(new Date(t * 1000))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) / 1000;
  return asUtc - t;
}

/**
 * UTC-offset transitions of `zone` in [start, end): sampled daily, each change located to the second
 * by bisection. Assumes at most one transition per day, which holds for every current IANA zone.
 */
export function buildZoneTable(zone: string, start: number, end: number): CompiledZone {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const starts = [start];
  const offsets = [offsetAt(fmt, start)];
  let t = start;
  let current = offsets[0];
  while (t < end) {
    const next = Math.min(t + 86400, end);
    const o = offsetAt(fmt, next);
    if (o !== current) {
      let lo = t;
      let hi = next; // offset(lo) === current, offset(hi) !== current
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(fmt, mid) === current) lo = mid;
        else hi = mid;
      }
      starts.push(hi);
      offsets.push(o);
      current = o;
    }
    t = next;
  }
  return { starts, offsets };
}

function methodsIntersect(a: Indexed['methods'], b: Indexed['methods']): boolean {
  if (!a || !b) return true;
  return Object.keys(a).some((m) => b[m]);
}

function covers(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** Two rules at the same priority that can match the same request make the winner depend on file order. */
function checkOverlaps(indexed: Indexed[], errors: string[]): void {
  const byPriority = new Map<number, Indexed[]>();
  for (const e of indexed) {
    const list = byPriority.get(e.rule.priority) ?? [];
    list.push(e);
    byPriority.set(e.rule.priority, list);
  }
  for (const [priority, list] of byPriority) {
    if (list.length < 2) continue;
    // Sorted by path, a prefix is followed by the paths it covers; 1,000 distinct rules stay fast enough
    // with the plain pairwise check for the few that share a priority.
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i];
        const b = list[j];
        if (!methodsIntersect(a.methods, b.methods)) continue;
        let overlap = false;
        if (a.kind === 'regex' || b.kind === 'regex') overlap = true;
        else if (a.kind === 'exact' && b.kind === 'exact') overlap = a.key === b.key;
        else if (a.kind === 'prefix' && b.kind === 'prefix') overlap = covers(a.key, b.key) || covers(b.key, a.key);
        else if (a.kind === 'prefix') overlap = covers(a.key, b.key);
        else overlap = covers(b.key, a.key);
        if (overlap) {
          errors.push(`rules '${a.rule.id}' and '${b.rule.id}' overlap at the same priority ${priority}; give one a lower number`);
        }
      }
    }
  }
}


/** Characters that stand for themselves in a regex when escaped with a backslash (ASCII punctuation). */
const ESCAPED_LITERALS = new Set(['.', '/', '-', '_', '~', '!', '@', '#', '%', '&', '=', ':', ',', ';', "'", '"', '<', '>', '`', '$', '^', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\']);

/**
 * A lower-case ASCII string that every path matching `source` (a regex rule, flag `i`, tested on the
 * lower-cased path) must contain, or undefined when none can be proved. The gate skips building the
 * RegExp (a few µs per request in njs) when the path lacks it.
 *
 * Conservative: only runs of plain characters at the top level of a regex with no top-level `|` count;
 * anything inside a group or class, any escape other than escaped punctuation, `.`, anchors and
 * quantifiers end a run, and a character made optional by a following `?`, `*` or `{` is dropped.
 * The longest run wins.
 */
export function requiredLiteral(source: string): string | undefined {
  const runs: string[] = [];
  let run = '';
  let depth = 0;
  const endRun = () => {
    if (run !== '') runs.push(run);
    run = '';
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined) return undefined;
      i++;
      if (depth === 0 && ESCAPED_LITERALS.has(next)) run += next;
      else if (depth === 0) endRun();
      continue;
    }
    if (c === '[') {
      // Skip the class, honouring escapes and a leading ']' or '^]'.
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      if (j >= source.length) return undefined;
      if (depth === 0) endRun();
      i = j;
      continue;
    }
    if (c === '(') {
      if (depth === 0) endRun();
      depth++;
      continue;
    }
    if (c === ')') {
      depth--;
      if (depth < 0) return undefined;
      continue;
    }
    if (depth > 0) continue;
    if (c === '|') return undefined;
    if (c === '?' || c === '*' || c === '{') {
      // The previous character (if it was part of the run) may be absent.
      run = run.slice(0, -1);
      endRun();
      if (c === '{') {
        const close = source.indexOf('}', i);
        if (close < 0) return undefined;
        i = close;
      }
      continue;
    }
    if (c === '+') {
      endRun();
      continue;
    }
    if (/^[A-Za-z0-9/_~!@#%&=:,;'"<>`-]$/.test(c)) {
      run += c;
      continue;
    }
    endRun(); // '.', '^', '$', and anything else
  }
  if (depth !== 0) return undefined;
  endRun();
  let best = '';
  for (const r of runs) if (r.length > best.length) best = r;
  return best === '' ? undefined : best.toLowerCase();
}
