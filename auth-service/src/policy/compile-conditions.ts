/**
 * Compiling a rule's conditions: users to source-qualified ids, claims, CIDRs to numbers, time
 * windows to minutes plus a zone table.
 */
import { POLICY_DAYS } from '../../../njs/src/core/policy-contract.js';
import type { CompiledConditions, CompiledZone } from '../../../njs/src/core/policy-contract.js';
import { MUTABLE_USERNAME_SOURCES } from '../../../njs/src/core/session-contract.js';
import { GROUP_ALIAS_PREFIX, type RuleInput } from './parse-policy.js';
import { buildZoneTable } from './time-tables.js';

/** Sources whose usernames are admin-assigned account keys (compared case-insensitively). */
const NAMED_SOURCES = ['local', 'tableau'];
/** A custom module's id (authenticators/custom.ts). */
const CUSTOM_ID = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * A `users:` entry as the id the gate compares (njs policyUserId): `kirk` is `local:kirk`;
 * `local:`, `tableau:` and `custom:<module-id>:` usernames are lower-cased; `oidc:`/`azure:` keep the
 * subject identifier as written (case-sensitive). Returns 'error:<message>' for an entry that can
 * never match.
 */
export function policyUserEntry(entry: string): string {
  const colon = entry.indexOf(':');
  if (colon < 0) return `local:${entry.toLowerCase()}`;
  const src = entry.slice(0, colon).toLowerCase();
  const rest = entry.slice(colon + 1);
  if (rest === '') return 'error:the part after the source is empty';
  if (MUTABLE_USERNAME_SOURCES.includes(src)) return `${src}:${rest}`;
  if (NAMED_SOURCES.includes(src)) return `${src}:${rest.toLowerCase()}`;
  if (src === 'custom') {
    const second = rest.indexOf(':');
    const id = second < 0 ? '' : rest.slice(0, second);
    if (!CUSTOM_ID.test(id) || second === rest.length - 1) return "error:a custom module's user is 'custom:<module-id>:<username>'";
    return `custom:${rest.toLowerCase()}`;
  }
  return `error:unknown source '${src}': write 'kirk' or 'local:kirk', 'tableau:<username>', 'custom:<module-id>:<username>', 'oidc:<sub>' or 'azure:<sub>' (OIDC and Entra users by their subject id, because their usernames and e-mail addresses can be changed)`;
}

export function compileConditions(
  where: string,
  rule: RuleInput,
  ctx: { horizonStart: number; horizonEnd: number; zones: { [zone: string]: CompiledZone }; groupAliases: { [alias: string]: string } },
  errors: string[],
): CompiledConditions | undefined {
  const c = rule.conditions;
  if (!c) return undefined;
  const out: CompiledConditions = {};
  if (c.groups) out.groups = c.groups.map((g, i) => resolveGroup(g, ctx.groupAliases, `${where}.conditions.groups.${i}`, errors));
  if (c.users) {
    out.users = c.users.map((u, i) => {
      const id = policyUserEntry(u);
      if (id.startsWith('error:')) errors.push(`${where}.conditions.users.${i}: ${id.slice(6)} (got '${u}')`);
      return id;
    });
  }
  if (c.claims) {
    out.claims = Object.entries(c.claims).map(([name, v]) => {
      let values = (Array.isArray(v) ? v : [v]).map(String);
      if (name === 'groups') values = values.map((g, i) => resolveGroup(g, ctx.groupAliases, `${where}.conditions.claims.groups.${i}`, errors));
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

/** A group entry as the gate compares it: `alias:<name>` becomes group_aliases[name]; others stay. */
function resolveGroup(entry: string, aliases: { [alias: string]: string }, where: string, errors: string[]): string {
  if (!entry.startsWith(GROUP_ALIAS_PREFIX)) return entry;
  const name = entry.slice(GROUP_ALIAS_PREFIX.length);
  if (Object.prototype.hasOwnProperty.call(aliases, name)) return aliases[name]!;
  const known = Object.keys(aliases);
  errors.push(`${where}: '${entry}' names no group_aliases entry (${known.length === 0 ? 'the policy has no group_aliases' : `known: ${known.join(', ')}`})`);
  return entry;
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
