import { describe, expect, it } from '@jest/globals';
import { FOLD_TABLE_SHA256, foldTable } from '../../test/cases/case-fold-cases.js';
import { sha256Hex } from '../../test/cases/fixtures.js';
import { requestPathCases } from '../../test/cases/request-path-cases.js';
import { foldCase, foldCaseByChar, hasMethodOverrideParam, policyPath } from './request-path.js';

describe('policyPath', () => {
  it.each(requestPathCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(policyPath(c.uri, c.requestUri)).toBe(c.expect);
  });

  it('guarantees its result has no ;, backslash, control character, %XX, empty or dot segment', () => {
    const kept = requestPathCases.filter((c) => c.expect !== null);
    kept.forEach((c) => {
      const p = policyPath(c.uri, c.requestUri) as string;
      expect(p.startsWith('/')).toBe(true);
      expect(p).not.toMatch(/[;\\\u0000-\u001f\u007f]|%[0-9a-fA-F]{2}|\/\/|(^|\/)\.\.?(\/|$)/);
    });
    expect(kept.length).toBeGreaterThan(20);
  });
});

describe('Unicode case folding', () => {
  it('refuses exactly the non-ASCII characters whose simple case mapping is ASCII (whole BMP)', () => {
    const refused: number[] = [];
    const foldsToAscii: number[] = [];
    for (let code = 0x80; code <= 0xffff; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const c = String.fromCharCode(code);
      if (policyPath('/' + c + 'x', '/' + c + 'x') === null) refused.push(code);
      const maps = [c.toUpperCase(), c.toLowerCase(), c.toUpperCase().toLowerCase()];
      if (maps.some((m) => m.length === 1 && m.charCodeAt(0) < 0x80)) foldsToAscii.push(code);
    }
    // U+0130's simple lower case is 'i' (UnicodeData.txt; njs 0.7.9 returns it), which Node hides
    // behind the full mapping 'i' + U+0307; U+FFFD is what invalid UTF-8 decodes to.
    expect(refused).toEqual([0x130, 0x131, 0x17f, 0x212a, 0xfffd]);
    expect(foldsToAscii).toEqual([0x131, 0x17f, 0x212a]);
  });

  it('folds to one character per character (never a full mapping such as \u00df → SS)', () => {
    for (const s of ['\u00df', '\ufb00', '\u0149', '\u1e9e']) {
      expect(foldCase('/' + s)).toHaveLength(2);
    }
  });

  it('decodes a byte string with the given decoder before judging it', () => {
    // What njs hands over as $uri: one "character" per UTF-8 byte.
    const bytes = encodeURIComponent('/CAF\u00c9').replace(/%([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    // Like the adapter's Buffer decoding: invalid UTF-8 becomes U+FFFD.
    const utf8 = (b: string) => {
      try {
        return decodeURIComponent(b.replace(/[\x80-\xff]/g, (c) => '%' + c.charCodeAt(0).toString(16)));
      } catch (e) {
        return '\ufffd';
      }
    };
    expect(bytes).toHaveLength(6);
    expect(policyPath(bytes, '/CAF%C3%89', utf8)).toBe('/caf\u00e9');
    expect(policyPath('/a\u00ff', '/a%ff', utf8)).toBeNull(); // invalid UTF-8
  });
});

describe('foldCase', () => {
  it('gives what the per-character fold gives, on 20,000 seeded random paths (incl. ß, İ, Σ/ς, ligatures, astral letters)', () => {
    const pool = ['a', 'Z', '/', '-', '\u00c4', '\u00e9', '\u00df', '\u0130', '\u03a3', '\u03c2', '\u03c3', '\u0391', '\ufb00', '\u1e9e',
      '\u0416', '\u0436', '\u01c5', '\u1f80', '\u0149', '\ud801\udc00', '\ud801\udc28', '\u65e5', '\u0345', '\u00b5', ' '];
    let seed = 8;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let fallbacks = 0;
    for (let i = 0; i < 20000; i++) {
      let s = '/';
      const len = 1 + rand(8);
      for (let j = 0; j < len; j++) s += pool[rand(pool.length)];
      const expected = foldCaseByChar(s);
      if (s.toUpperCase().toLowerCase().length !== s.length) fallbacks++;
      expect([s, foldCase(s)]).toEqual([s, expected]);
    }
    expect(fallbacks).toBeGreaterThan(1000); // both routes were exercised
  });

  it('folds astral letters (Deseret) in both routes', () => {
    expect(foldCase('/\ud801\udc00')).toBe('/\ud801\udc28');
    expect(foldCase('/\ud801\udc00\u00df')).toBe('/\ud801\udc28\u00df');
  });
});

describe('hasMethodOverrideParam', () => {
  const cases: [string, string, boolean][] = [
    ['finds _method=DELETE', '/reports?_method=DELETE', true],
    ['finds it after other parameters', '/reports?a=1&_method=delete', true],
    ['finds an upper-case name', '/reports?_METHOD=DELETE', true],
    ['finds a %5f-encoded name', '/reports?%5Fmethod=DELETE', true],
    ['finds the array form', '/reports?_method[]=DELETE', true],
    ['finds it after a ;', '/reports?a=1;_method=PUT', true],
    ['ignores _method in a value', '/reports?next=_method', false],
    ['ignores a longer name that only contains it', '/reports?x_method=DELETE', false],
    ['ignores a path without a query', '/reports/_method', false],
    ['ignores a query without it', '/reports?a=1&b=%5B', false],
    ['survives a malformed escape', '/reports?%E0%A4%A=1&_method=PUT', true],
  ];
  it.each(cases)('%s', (_name, uri, expected) => {
    expect(hasMethodOverrideParam(uri)).toBe(expected);
  });
});

describe('the gate (njs) and the compiler/CLI (Node) fold alike', () => {
  it('has the digest the njs runner checks too (njs/test/cases/case-fold-cases.ts)', () => {
    const table = foldTable();
    expect(table.split(',').length).toBeGreaterThan(1000);
    expect(sha256Hex(table)).toBe(FOLD_TABLE_SHA256);
  });
});
