/**
 * Reading a policy file: YAML or JSON into plain data, and the shape every rule must have (zod),
 * with each problem named by its place in the file (`rules[3] (id).path.exact: ...`).
 */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { APP_NAME_PATTERN } from '../../../njs/src/core/policy-contract.js';

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

export const ruleSchema = z.strictObject({
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
export type RuleInput = z.infer<typeof ruleSchema>;

/** An app's name (`set $gate_app NAME;`): policy-contract.ts APP_NAME_PATTERN. */
export const APP_NAME = new RegExp(APP_NAME_PATTERN);

/** One entry of `apps:`: its own default and rules (each rule as ruleSchema, checked one by one). */
export const appSchema = z.strictObject({
  default: decision.optional(),
  rules: z.array(z.unknown()).optional(),
});

export const topSchema = z.strictObject({
  default: decision.optional(),
  // alias name → the group as the identity source sends it (an Entra object id); rules say `alias:<name>`.
  group_aliases: z.record(z.string().regex(/^[^,]+$/), z.string().regex(/^[^,]+$/, 'a group id, without commas')).optional(),
  rules: z.array(z.unknown()).optional(),
  // app name → its section; the top-level default and rules are the default (unnamed) app's.
  apps: z
    .record(z.string().regex(APP_NAME, 'an app name: lower-case letters, digits, _ and -, starting with a letter or digit, at most 32'), appSchema)
    .optional(),
});

/** The prefix of a group entry that names a `group_aliases` entry instead of a group. */
export const GROUP_ALIAS_PREFIX = 'alias:';

export function issuesToErrors(where: string, error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const at = i.path.length > 0 ? `${where}.${i.path.join('.')}` : where;
    return `${at}: ${i.message}`;
  });
}
