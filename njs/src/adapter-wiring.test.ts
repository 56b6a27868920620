import fs from 'fs';
import { describe, expect, it } from '@jest/globals';
import { FORWARDED_CLAIMS, MUTABLE_USERNAME_SOURCES, qualifiedUserId } from './core/session-contract.js';

// The adapter writes js_var variables that nginx must declare, and each forwarded claim needs its
// proxy_set_header line. This keeps FORWARDED_CLAIMS, nginx/gate.conf and the upstream headers
// snippet in step. (Type-checked by njs/tsconfig.json too, hence 'fs' and expect.getState.)
const testPath = String(expect.getState().testPath);
const repoRoot = testPath.slice(0, testPath.lastIndexOf('/njs/src/'));
const read = (path: string) => fs.readFileSync(repoRoot + '/' + path, 'utf8');

const ADAPTER_VARIABLES = ['gate_reason', 'gate_user', 'gate_src', 'gate_location', 'gate_cookie'];
/** Headers nginx derives from the claims with a map (gate.conf), not variables the gate writes. */
const DERIVED_HEADERS = ['user'];
const HEADERS = FORWARDED_CLAIMS.concat(DERIVED_HEADERS);

/** `map $from $to { ... }` in `conf` as key → value (quotes removed), or null when absent. */
function readMap(conf: string, from: string, to: string): { [key: string]: string } | null {
  const m = new RegExp('^map\\s+\\$' + from + '\\s+\\$' + to + '\\s*\\{([^}]*)\\}', 'm').exec(conf);
  if (m === null) return null;
  const entries: { [key: string]: string } = {};
  const lines = m[1].split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = /^\s*("[^"]*"|\S+)\s+("[^"]*"|\S+)\s*;/.exec(lines[i]);
    if (line !== null) entries[line[1].replace(/^"|"$/g, '')] = line[2].replace(/^"|"$/g, '');
  }
  return entries;
}

/** What nginx makes of a map value: $gate_h_<claim> replaced by that claim's value. */
function expand(value: string, claims: { [claim: string]: string }): string {
  return value.replace(/\$gate_h_(\w+)/g, (_all, claim: string) => claims[claim] ?? '');
}

describe('nginx wiring of the gate variables', () => {
  const gateConf = read('nginx/gate.conf');
  const headersConf = read('nginx/snippets/upstream-headers.conf');
  const declared = (gateConf.match(/^\s*js_var\s+\$(\w+)\s*;/gm) || []).map((line) => line.replace(/^\s*js_var\s+\$(\w+)\s*;$/, '$1'));

  it.each(ADAPTER_VARIABLES.concat(FORWARDED_CLAIMS.map((claim) => 'gate_h_' + claim)))('declares js_var $%s', (name) => {
    expect(declared).toContain(name);
  });

  it('declares no $gate_h_ variable for a claim the gate does not forward', () => {
    const extra = declared.filter((name) => name.startsWith('gate_h_') && FORWARDED_CLAIMS.indexOf(name.slice(7)) < 0);
    expect(extra).toEqual([]);
  });

  it.each(HEADERS)('forwards claim %s as X-Payload-<claim> from $gate_h_<claim>', (claim) => {
    expect(headersConf).toMatch(new RegExp('^\\s*proxy_set_header\\s+X-Payload-' + claim + '\\s+\\$gate_h_' + claim + '\\s*;', 'mi'));
  });

  it('forwards the Cookie header the gate rebuilt (session cookie stripped)', () => {
    expect(headersConf).toMatch(/^\s*proxy_set_header\s+Cookie\s+\$gate_cookie\s*;/m);
  });

  it('derives $gate_h_user as qualifiedUserId does, for every source, and leaves it empty without one', () => {
    const map = readMap(gateConf, 'gate_h_src', 'gate_h_user');
    expect(map).not.toBeNull();
    const sources = MUTABLE_USERNAME_SOURCES.concat(['local', 'tableau', 'custom:ldap', 'custom']);
    for (const src of sources) {
      const claims = { src: src, username: 'kirk', sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ' };
      const value = map![src] ?? map!.default;
      expect(expand(value, claims)).toBe(qualifiedUserId(src, 'kirk', claims.sub));
    }
    // Exactly the mutable sources have their own entry (besides "" and default).
    expect(Object.keys(map!).filter((k) => k !== '' && k !== 'default').sort()).toEqual([...MUTABLE_USERNAME_SOURCES].sort());
    expect(map!['']).toBe('');
    expect(declared).not.toContain('gate_h_user');
  });
});
