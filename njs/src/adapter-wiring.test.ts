import fs from 'fs';
import { describe, expect, it } from '@jest/globals';
import { FORWARDED_CLAIMS } from './core/session-contract.js';

// The adapter writes js_var variables that nginx must declare, and each forwarded claim needs its
// proxy_set_header line. This keeps FORWARDED_CLAIMS, nginx/gate.conf and the upstream headers
// snippet in step. (Type-checked by njs/tsconfig.json too, hence 'fs' and expect.getState.)
const testPath = String(expect.getState().testPath);
const repoRoot = testPath.slice(0, testPath.lastIndexOf('/njs/src/'));
const read = (path: string) => fs.readFileSync(repoRoot + '/' + path, 'utf8');

const ADAPTER_VARIABLES = ['gate_reason', 'gate_user', 'gate_location', 'gate_cookie'];
/** Headers the gate derives from claims rather than copies (core/decide.ts forwardedHeaders). */
const DERIVED_HEADERS = ['user'];
const HEADERS = FORWARDED_CLAIMS.concat(DERIVED_HEADERS);

describe('nginx wiring of the gate variables', () => {
  const gateConf = read('nginx/gate.conf');
  const headersConf = read('nginx/snippets/upstream-headers.conf');
  const declared = (gateConf.match(/^\s*js_var\s+\$(\w+)\s*;/gm) || []).map((line) => line.replace(/^\s*js_var\s+\$(\w+)\s*;$/, '$1'));

  it.each(ADAPTER_VARIABLES.concat(HEADERS.map((claim) => 'gate_h_' + claim)))('declares js_var $%s', (name) => {
    expect(declared).toContain(name);
  });

  it('declares no $gate_h_ variable for a claim the gate does not forward', () => {
    const extra = declared.filter((name) => name.startsWith('gate_h_') && HEADERS.indexOf(name.slice(7)) < 0);
    expect(extra).toEqual([]);
  });

  it.each(HEADERS)('forwards claim %s as X-Payload-<claim> from $gate_h_<claim>', (claim) => {
    expect(headersConf).toMatch(new RegExp('^\\s*proxy_set_header\\s+X-Payload-' + claim + '\\s+\\$gate_h_' + claim + '\\s*;', 'mi'));
  });

  it('forwards the Cookie header the gate rebuilt (session cookie stripped)', () => {
    expect(headersConf).toMatch(/^\s*proxy_set_header\s+Cookie\s+\$gate_cookie\s*;/m);
  });
});
