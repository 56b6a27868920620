import { describe, expect, it } from '@jest/globals';
import { requiredLiteral } from './regex-literal.js';

/** Seeded PRNG (mulberry32): the same regexes and paths on every run. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % 4294967296) % n;
  };
}

/** A regex source and one string it matches, built together from a small grammar. */
interface Piece {
  source: string;
  sample: string;
}

const LETTERS = 'abcdeklmsxyz0123456789/-_.';

function pick<T>(rand: (n: number) => number, list: readonly T[]): T {
  return list[rand(list.length)];
}

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

/** One atom: a plain character, an escape of any kind, a class, or a group. */
function atom(rand: (n: number) => number, depth: number): Piece {
  const ch = LETTERS[rand(LETTERS.length)];
  const code = ch.charCodeAt(0);
  switch (rand(depth > 1 ? 16 : 18)) {
    case 0:
      return { source: `\\x${hex(code, 2)}`, sample: ch };
    case 1:
      return { source: `\\u${hex(code, 4)}`, sample: ch };
    case 2:
      return { source: `\\u${hex(0xfc, 4)}`, sample: '\u00fc' };
    case 3:
      return { source: '\\d', sample: String(rand(10)) };
    case 4:
      return { source: '\\w', sample: pick(rand, ['a', 'Z', '_', '7']) };
    case 5:
      return { source: '\\s', sample: ' ' };
    case 6:
      return { source: '\\b', sample: '' };
    case 7:
      return { source: '\\cJ', sample: '\n' };
    case 8:
      return { source: '\\0', sample: '\u0000' };
    case 9:
      return { source: '\\/', sample: '/' };
    case 10:
      return { source: '\\-', sample: '-' };
    case 11:
      return { source: '\\.', sample: '.' };
    case 12:
      return { source: '.', sample: pick(rand, ['q', '/', '.']) };
    case 13:
      return { source: '[a-c\\x2d]', sample: pick(rand, ['a', 'b', '-']) };
    case 14:
      return { source: '[^/]', sample: 'r' };
    case 15:
      return { source: '\\x41', sample: 'A' };
    case 16: {
      const inner = sequence(rand, depth + 1);
      return { source: `(${inner.source})`, sample: inner.sample };
    }
    default: {
      const a = sequence(rand, depth + 1);
      const b = sequence(rand, depth + 1);
      return rand(2) === 0 ? { source: `(?:${a.source}|${b.source})`, sample: a.sample } : { source: `(${a.source}|${b.source})`, sample: b.sample };
    }
  }
}

/** An atom with an optional quantifier. */
function quantified(rand: (n: number) => number, depth: number): Piece {
  const a = atom(rand, depth);
  if (a.source === '\\b') return a; // an assertion cannot be repeated
  switch (rand(7)) {
    case 0:
      return { source: `${a.source}?`, sample: rand(2) === 0 ? a.sample : '' };
    case 1:
      return { source: `${a.source}*`, sample: a.sample.repeat(rand(3)) };
    case 2:
      return { source: `${a.source}+`, sample: a.sample.repeat(1 + rand(2)) };
    case 3:
      return { source: `${a.source}{0,2}`, sample: a.sample.repeat(rand(3)) };
    case 4:
      return { source: `${a.source}{2}`, sample: a.sample.repeat(2) };
    default:
      return a;
  }
}

function sequence(rand: (n: number) => number, depth: number): Piece {
  const n = 1 + rand(depth > 0 ? 3 : 6);
  let source = '';
  let sample = '';
  for (let i = 0; i < n; i++) {
    const q = quantified(rand, depth);
    source += q.source;
    sample += q.sample;
  }
  return { source, sample };
}

describe('requiredLiteral: escapes are never read as text', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['a hex escape is the character it encodes', '^/reports\\x2darchive', '/reports-archive'],
    ['a unicode escape of an ASCII character', '^/a\\u002fb', '/a/b'],
    ['a non-ASCII unicode escape ends the run (not "u00fc")', '^/m\\u00fcnchen', 'nchen'],
    ['\\d is a class, not the letter d', '^/v\\d+/admin', '/admin'],
    ['\\w is a class', '^/x\\wyz', '/x'],
    ['\\s is a class', '^/ab\\scd', '/ab'],
    ['\\b is an assertion', '\\bsecret\\b', 'secret'],
    ['\\cJ is a control character, not "cJ"', '/a\\cJbc', '/a'],
    ['\\0 is NUL, not "0"', '/ab\\012', '/ab'],
    ['an octal escape takes its digits', '/a\\101bc', '/a'],
    ['a back-reference takes its digits', '(a)\\1xyz', 'xyz'],
    ['\\p{..} is a property class, not "p{l}"', '\\p{L}abc', 'abc'],
    ['an escaped slash is a slash', '\\/admin\\/x', '/admin/x'],
    ['a quantified hex escape is optional', '/ab\\x2d?cd', '/ab'],
    ['\\x without two hex digits is the letter x, dropped (PCRE may differ)', '/a\\xz12', 'z12'],
    ['\\c before a class does not swallow the class', '/a\\c[abc]', '/a'],
  ];
  it.each(cases)('%s (%s)', (_name, source, expected) => {
    expect(requiredLiteral(source)).toBe(expected);
  });
});

describe('requiredLiteral fuzz: every path the RegExp matches contains the literal', () => {
  it('holds for 3,000 generated regexes, on samples built to match and on random paths', () => {
    const rand = prng(20261205);
    let checked = 0;
    let withLiteral = 0;
    for (let i = 0; i < 3000; i++) {
      const piece = sequence(rand, 0);
      const anchored = rand(3) === 0 ? `^/${piece.source}` : piece.source;
      const re = new RegExp(anchored, 'i');
      const literal = requiredLiteral(anchored);
      if (literal !== undefined) withLiteral++;
      // The gate searches the lower-cased path.
      const paths = [`/${piece.sample}`, `/pre/${piece.sample}/post`];
      for (let k = 0; k < 6; k++) {
        let p = '/';
        for (let j = 0; j < 8; j++) p += LETTERS[rand(LETTERS.length)];
        paths.push(p);
      }
      for (const raw of paths) {
        const path = raw.toLowerCase();
        if (path.search(re) < 0) continue;
        checked++;
        if (literal !== undefined && !path.includes(literal)) {
          throw new Error(`prefilter '${literal}' of /${anchored}/i misses the matching path ${JSON.stringify(path)}`);
        }
      }
    }
    // The samples really exercise matches, and the prefilter is really used.
    expect(checked).toBeGreaterThan(3000);
    expect(withLiteral).toBeGreaterThan(500);
  });
});
