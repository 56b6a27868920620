/**
 * The gate (njs 0.7.9) and `npm run policy -- check` / the compiler (Node) must fold paths the same
 * way, yet each uses its own runtime's case tables. This digest of foldChar (and foldCase) over the whole BMP is
 * checked in both (jest and the njs runner), so a runtime whose tables differ fails a test instead of
 * silently matching rules differently. njs 0.7.9 subset.
 */
import { foldCase, foldChar } from '../../src/core/request-path.js';

/**
 * Left out of the digest (measured differences): U+0130, whose lower case is 'i' in njs and the
 * two-character full mapping in Node (the gate refuses it either way), and letters added in Unicode
 * 16 and later, which Node folds and njs 0.7.9 does not know (listed in docs/policy.md).
 */
export const FOLD_EXCEPTIONS: number[][] = [
  [0x130, 0x130],
  [0x1c89, 0x1c8a],
  [0xa7cb, 0xa7dc],
];

function isException(code: number): boolean {
  for (let i = 0; i < FOLD_EXCEPTIONS.length; i++) {
    if (code >= FOLD_EXCEPTIONS[i][0] && code <= FOLD_EXCEPTIONS[i][1]) return true;
  }
  return false;
}

/**
 * 'code:folded,' (hex) for every non-ASCII BMP character that foldChar changes, plus a marker
 * wherever foldCase's fast route disagrees with it. One character at a time: the njs CLI never frees memory, and a regex replace per
 * character would exhaust it.
 */
export function foldTable(): string {
  let out = '';
  for (let code = 0x80; code <= 0xffff; code++) {
    if ((code >= 0xd800 && code <= 0xdfff) || isException(code)) continue;
    const c = String.fromCharCode(code);
    const folded = foldChar(c);
    const f = folded.charCodeAt(0);
    if (f !== code) out += code.toString(16) + ':' + f.toString(16) + ',';
    // foldCase's whole-string route must give what the per-character fold gives.
    if (foldCase(c) !== folded) out += 'foldCase differs at ' + code.toString(16) + ',';
  }
  return out;
}

/** sha256 of foldTable(): the same under the project's Node 20 (ICU with Unicode 17) and njs 0.7.9. */
export const FOLD_TABLE_SHA256 = '955be4900bbc26189884a7b8f3602d6e3af0f4dcae2aab1b81a1b5d4fa79a585';
