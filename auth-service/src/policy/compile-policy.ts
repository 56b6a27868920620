/**
 * Validates an access-policy file and compiles it into the JSON the njs gate preloads
 * (types and matching semantics: njs/src/core/policy-contract.ts; evaluator: njs/src/core/policy.ts).
 * Every problem is collected and reported at once, each naming the rule and field.
 *
 * The stages live in their own files: parse-policy (file and shape), lint-paths (path and regex
 * checks), compile-conditions, regex-literal (the prefilter), index-rules (tables and overlaps) and
 * time-tables (zone offsets). This file runs them in order and is the public entry point.
 */
import { COMPILED_POLICY_VERSION } from '../../../njs/src/core/policy-contract.js';
import type { CompiledPolicy, CompiledRule, CompiledZone, PolicyDecision } from '../../../njs/src/core/policy-contract.js';
import { compileConditions } from './compile-conditions.js';
import { buildIndex, checkOverlaps, type Indexed } from './index-rules.js';
import { checkPath, checkRegex, foldRulePath } from './lint-paths.js';
import { APP_NAME, issuesToErrors, ruleSchema, topSchema } from './parse-policy.js';
import { requiredLiteral } from './regex-literal.js';
import { HORIZON_FUTURE_SECONDS, HORIZON_PAST_SECONDS } from './time-tables.js';

export { loadPolicyFile } from './parse-policy.js';
export { parseCidr, policyUserEntry } from './compile-conditions.js';
export { requiredLiteral } from './regex-literal.js';
export { buildZoneTable, lintCompiledPolicy, HORIZON_FUTURE_SECONDS, HORIZON_PAST_SECONDS, HORIZON_WARN_SECONDS } from './time-tables.js';

export type CompileResult =
  | { ok: true; compiled: CompiledPolicy; warnings: string[] }
  | { ok: false; errors: string[] };

/**
 * Validates `source` and compiles it. `now` (epoch seconds) anchors the time-zone horizon.
 *
 * Checked: unknown keys anywhere, decisions, rule ids (format, duplicates), paths (leading '/', no
 * query/fragment/'%'/backslash/NUL, no '.'/'..' or empty segments nginx would have removed, none of
 * the characters the gate refuses), regex syntax and catastrophic backtracking, methods, priorities,
 * overlapping rules at equal priority, users (source-qualified ids), CIDRs (IPv4/IPv6, host bits),
 * time windows and IANA zones, `alias:<name>` groups (must name a group_aliases entry), and public rules carrying identity conditions (anyone can drop a cookie).
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
  const topInput = source as { default?: unknown; rules?: unknown; group_aliases?: unknown; apps?: unknown };
  const groupAliases: { [alias: string]: string } = top.success && top.data.group_aliases ? top.data.group_aliases : {};
  const defaultDecision: PolicyDecision = topInput.default === 'allow' ? 'allow' : 'deny';
  if (topInput.default === undefined) warnings.push("policy: no 'default' given; requests matching no rule are denied");

  const now = Math.floor(options.now);
  const horizonStart = now - HORIZON_PAST_SECONDS;
  const horizonEnd = now + HORIZON_FUTURE_SECONDS;
  const context = { now, horizonStart, horizonEnd, groupAliases };
  const compiled = compileSection('', topInput.rules, defaultDecision, context, errors, warnings);

  const appsInput = topInput.apps;
  const apps: { [app: string]: CompiledPolicy } = {};
  let appCount = 0;
  if (typeof appsInput === 'object' && appsInput !== null && !Array.isArray(appsInput)) {
    for (const [name, raw] of Object.entries(appsInput as { [app: string]: unknown })) {
      const app = (typeof raw === 'object' && raw !== null ? raw : {}) as { default?: unknown; rules?: unknown };
      if (app.default === undefined) warnings.push(`apps.${name}: no 'default' given; requests of this app matching no rule are denied`);
      const section = compileSection(`apps.${name}.`, app.rules, app.default === 'allow' ? 'allow' : 'deny', context, errors, warnings);
      if (APP_NAME.test(name)) {
        apps[name] = section;
        appCount++;
      } else {
        errors.push(`apps.${name}: not an app name (lower-case letters, digits, _ and -, starting with a letter or digit, at most 32), as in set $gate_app NAME;`);
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  if (appCount > 0) compiled.apps = apps;
  return { ok: true, compiled, warnings };
}

/** The names of the apps a compiled policy has a section for (sorted). */
export function policyAppNames(compiled: CompiledPolicy): string[] {
  return compiled.apps === undefined ? [] : Object.keys(compiled.apps).sort();
}

interface SectionContext {
  now: number;
  horizonStart: number;
  horizonEnd: number;
  groupAliases: { [alias: string]: string };
}

/**
 * Compiles one section's rules (the top level's, or one app's) into a whole CompiledPolicy with its
 * own indexes and zone tables. Problems are pushed onto `errors` named `<where>rules[i] (id)...`;
 * rule ids are unique within the section.
 */
function compileSection(where0: string, rulesInput: unknown, defaultDecision: PolicyDecision, context: SectionContext, errors: string[], warnings: string[]): CompiledPolicy {
  const { now, horizonStart, horizonEnd, groupAliases } = context;
  const zones: { [zone: string]: CompiledZone } = {};
  const rules: CompiledRule[] = [];
  const indexed: Indexed[] = [];
  const seenIds = new Map<string, number>();
  const raw: unknown[] = Array.isArray(rulesInput) ? rulesInput : [];
  const errorsBefore = errors.length;
  raw.forEach((input, index) => {
    const parsed = ruleSchema.safeParse(input);
    const idGuess = typeof (input as { id?: unknown })?.id === 'string' ? (input as { id: string }).id : '';
    const where = `${where0}rules[${index}]${idGuess ? ` (${idGuess})` : ''}`;
    if (!parsed.success) {
      errors.push(...issuesToErrors(where, parsed.error));
      return;
    }
    const rule = parsed.data;
    const before = errors.length;
    const previous = seenIds.get(rule.id);
    if (previous !== undefined) errors.push(`${where}.id: duplicate rule id, first used by ${where0}rules[${previous}]`);
    else seenIds.set(rule.id, index);

    let kind: Indexed['kind'];
    let key: string;
    if ('exact' in rule.path) {
      kind = 'exact';
      checkPath(`${where}.path.exact`, rule.path.exact, errors);
      key = foldRulePath(rule.path.exact);
      // The gate ignores one trailing slash on exact paths: '/admin/' is '/admin'.
      if (key.length > 1 && key.endsWith('/')) key = key.slice(0, -1);
    } else if ('prefix' in rule.path) {
      kind = 'prefix';
      checkPath(`${where}.path.prefix`, rule.path.prefix, errors);
      key = foldRulePath(rule.path.prefix);
      while (key.length > 1 && key.endsWith('/')) key = key.slice(0, -1);
    } else {
      kind = 'regex';
      key = rule.path.regex;
      checkRegex(`${where}.path.regex`, key, errors);
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

    const conditions = compileConditions(where, rule, { horizonStart, horizonEnd, zones, groupAliases }, errors);
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

  const overlaps: string[] = [];
  checkOverlaps(indexed, overlaps);
  for (const e of overlaps) errors.push(where0 === '' ? e : `${where0.slice(0, -1)}: ${e}`);
  if (errors.length > errorsBefore) return { version: COMPILED_POLICY_VERSION, default: defaultDecision, compiledAt: now, horizonStart, horizonEnd, rules: [], exact: {}, prefix: {}, regex: [], zones: {} };

  const { exact, prefix, regex } = buildIndex(rules, indexed);
  if (regex.length > 20) warnings.push(`${where0 === '' ? 'policy: ' : where0.slice(0, -1) + ': '}${regex.length} regex rules; regex rules are checked one by one on every request`);

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
  return compiled;
}

