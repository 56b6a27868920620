/**
 * The required-literal prefilter of regex rules: a string every matching path must contain, so the
 * gate can skip building and running the RegExp (a few µs per request in njs) on most paths.
 * A wrong literal is a fail-open bug (the rule silently never applies), so the reading is
 * conservative: whatever is not understood ends a run instead of being taken as text.
 */

/** Characters that stand for themselves in a regex when escaped with a backslash (ASCII punctuation). */
const ESCAPED_LITERALS = new Set(['.', '/', '-', '_', '~', '!', '@', '#', '%', '&', '=', ':', ',', ';', "'", '"', '<', '>', '`', '$', '^', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\']);

/** Characters that may be part of a literal run: ASCII letters, digits and path punctuation. */
const PLAIN = /^[A-Za-z0-9/_~!@#%&=:,;'"<>`-]$/;

const HEX = /^[0-9A-Fa-f]+$/;

/**
 * Reads the escape at `source[i]` (the backslash) and returns the literal character it stands for,
 * or null when it is a class (`\d`, `\w`, `\s`, `\p{..}`), an assertion (`\b`), a back-reference
 * (`\1`, `\k<name>`), a control or octal escape (`\cX`, `\0`, `\12`) or anything else that is not
 * one plain character, plus the index of its last character. `\xHH` and `\uHHHH` are decoded.
 */
function readEscape(source: string, i: number): { literal: string | null; end: number } | undefined {
  const next = source[i + 1];
  if (next === undefined) return undefined;
  if (ESCAPED_LITERALS.has(next)) return { literal: next, end: i + 1 };
  if (next === 'x' || next === 'u') {
    const width = next === 'x' ? 2 : 4;
    const hex = source.slice(i + 2, i + 2 + width);
    if (hex.length === width && HEX.test(hex)) return { literal: String.fromCharCode(parseInt(hex, 16)), end: i + 1 + width };
    if (next === 'u' && source[i + 2] === '{') return skipTo(source, i, '}');
    // Not a well-formed escape: read as the letter alone by JavaScript, perhaps otherwise by PCRE.
    return { literal: null, end: i + 1 };
  }
  if (next === 'c') return { literal: null, end: /^[A-Za-z]$/.test(source[i + 2] ?? '') ? i + 2 : i + 1 };
  if ((next === 'p' || next === 'P' || next === 'k') && (source[i + 2] === '{' || source[i + 2] === '<')) {
    return skipTo(source, i, source[i + 2] === '{' ? '}' : '>');
  }
  if (next >= '0' && next <= '9') {
    let end = i + 1;
    while (source[end + 1] >= '0' && source[end + 1] <= '9') end++;
    return { literal: null, end };
  }
  return { literal: null, end: i + 1 };
}

/**
 * A `\u{..}`, `\p{..}` or `\k<..>` escape up to `close`. Undefined (no literal) when it is not closed
 * or what it spans could be a group, class or alternative under another reading of the escape.
 */
function skipTo(source: string, i: number, close: string): { literal: null; end: number } | undefined {
  const end = source.indexOf(close, i + 3);
  if (end < 0 || /[()[\]|\\]/.test(source.slice(i + 3, end))) return undefined;
  return { literal: null, end };
}

/**
 * A string that every path matching `source` (a regex rule, flag `i`, searched in the lower-cased
 * path) must contain, lower-case ASCII, or undefined when none can be proved. The gate skips the
 * RegExp when the path lacks it.
 *
 * Conservative: only runs of plain ASCII characters (letters, digits, path punctuation; escaped
 * punctuation; `\xHH`/`\uHHHH` escapes of those) at the top level of a regex with no top-level `|`
 * count. Anything inside a group or class, any other escape (`\d`, `\w`, `\s`, `\b`, `\cX`, `\0`,
 * octal, back-references, `\p{..}`), non-ASCII characters, `.`, anchors and quantifiers end a run,
 * and a character made optional by a following `?`, `*` or `{` is dropped. The longest run wins.
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
      const escape = readEscape(source, i);
      if (escape === undefined) return undefined;
      i = escape.end;
      if (depth > 0) continue;
      if (escape.literal !== null && PLAIN.test(escape.literal)) run += escape.literal;
      else if (escape.literal !== null && ESCAPED_LITERALS.has(escape.literal)) run += escape.literal;
      else endRun();
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
    if (PLAIN.test(c)) {
      run += c;
      continue;
    }
    endRun(); // '.', '^', '$', non-ASCII and anything else
  }
  if (depth !== 0) return undefined;
  endRun();
  let best = '';
  for (const r of runs) if (r.length > best.length) best = r;
  return best === '' ? undefined : best.toLowerCase();
}
