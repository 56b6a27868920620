/**
 * The lookup tables of a compiled policy (exact map, prefix map, regex list, each sorted by priority)
 * and the check that no two rules the gate could both match share a priority.
 */
import type { CompiledRule } from '../../../njs/src/core/policy-contract.js';

/** One valid rule on its way into the tables. */
export interface Indexed {
  /** Index into the compiled `rules` array. */
  index: number;
  rule: { id: string; priority: number };
  kind: 'exact' | 'prefix' | 'regex';
  /** The compiled path key (folded, lower-cased), or the regex source. */
  key: string;
  methods: { [m: string]: boolean } | undefined;
}

/** The exact map, prefix map and regex list of the compiled policy, sorted by priority, then file order. */
export function buildIndex(rules: CompiledRule[], indexed: Indexed[]): { exact: { [k: string]: number[] }; prefix: { [k: string]: number[] }; regex: number[] } {
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
  return { exact, prefix, regex };
}

function methodsIntersect(a: Indexed['methods'], b: Indexed['methods']): boolean {
  if (!a || !b) return true;
  return Object.keys(a).some((m) => b[m]);
}

function covers(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** Two rules at the same priority that can match the same request make the winner depend on file order. */
export function checkOverlaps(indexed: Indexed[], errors: string[]): void {
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
