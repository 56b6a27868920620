/**
 * The request path the access policy is matched against, derived from nginx's normalised `$uri`.
 * Pure and in the njs 0.7.9 subset: the gate runs it on every request when a policy is loaded.
 *
 * nginx has already decoded percent-escapes once, resolved `.`/`..` (including `%2e`), merged `//`
 * and cut the query string (measured on nginx 1.22: `/public/%2e%2e/federation` → `/federation`,
 * `/fed%65ration` → `/federation`, `/a%00b` and raw control characters → 400 from nginx itself).
 * What nginx leaves alone, but some upstream would read differently, is handled here:
 *
 * - `;params` (Tomcat/Java path parameters): cut from every segment before matching, so
 *   `/federation;x=1` is `/federation`; a segment that is `.` or `..` once cut (`..;`) is ambiguous;
 * - backslash (from `%5c` or sent raw; IIS reads it as `/`): ambiguous;
 * - a `%XX` escape left after nginx's one decoding (`%252e` → `%2e`; a double-decoding upstream
 *   would read `.`): ambiguous;
 * - control characters decoded from `%01`…`%1f`, `%7f`: ambiguous;
 * - `.`/`..` or empty segments nginx should already have removed (defence in depth, e.g. with
 *   `merge_slashes off`): `..`/`.` ambiguous, empty segments collapsed;
 * - a segment ending in `.` or a space (`/federation.`, `/federation%20`; Windows/IIS drops them and
 *   serves `/federation`): ambiguous;
 * - `?` or `#` decoded from `%3f`/`%23`: an upstream that decodes and re-parses the path cuts it there
 *   (`/federation%23` is `/federation` to it): ambiguous;
 * - bytes that are not valid UTF-8 (`%ff`, overlong `%c0%ae`): IIS may read them in the ANSI code page,
 *   others replace them: ambiguous;
 * - the four non-ASCII letters whose simple case mapping is ASCII (U+0130 İ → i, U+0131 ı → I,
 *   U+017F ſ → S, U+212A Kelvin sign → k): .NET's and Java's case-insensitive compares read
 *   `/federatıon` as `/federation`: ambiguous.
 *
 * A path with other non-ASCII letters is case-folded here (foldCase) with their simple (one character
 * to one character) Unicode case mapping, as IIS's case-insensitive compare does (ordinal-ignore-case:
 * invariant upper-casing): `/CAFÉ` and `/café` are one path, `/Straße` is not `/strasse`. An ASCII
 * path keeps its case; the policy evaluator lower-cases it (cheaply, on every request).
 *
 * Ambiguous paths are refused (400, reason `path-ambiguous`) rather than guessed at, and paths longer
 * than MAX_POLICY_PATH_LENGTH (400, reason `path-too-long`) before any regex rule runs on them.
 */

/**
 * Longest `$uri` the gate matches rules against, in bytes as nginx hands it over (UTF-8). Bounds the
 * cost of regex rules on every request; IIS's own default limit for the path (maxUrl) is 4,096.
 */
export const MAX_POLICY_PATH_LENGTH = 2048;

/** True when the policy must not even look at `uri` because it is longer than MAX_POLICY_PATH_LENGTH. */
export function isPathTooLong(uri: string): boolean {
  return uri.length > MAX_POLICY_PATH_LENGTH;
}

/**
 * Anything that sends a path to the slow path: anything but printable ASCII (control characters, a
 * space, non-ASCII bytes), ';', backslash, '%', '?', '#', '//', '/.', './' or a final '.'.
 */
const SUSPICIOUS = /[^!-~]|[;\\%?#]|\/\/|\/\.|\.\/|\.$/;

/**
 * The simple case folding of one character (one code point; in Node an astral one is a surrogate
 * pair): its upper-case form (if the mapping keeps the length, else the character itself), lower-cased
 * again (likewise). Node's toUpperCase/toLowerCase apply full mappings (`ß` → `SS`), njs 0.7.9's
 * simple ones; keeping only length-preserving results makes both runtimes agree (checked over the
 * BMP by njs/test/cases/case-fold-cases.ts: they differ only for letters added in Unicode 16+, which
 * njs 0.7.9 does not know, and for U+0130, which policyPath refuses).
 */
export function foldChar(c: string): string {
  let upper = c.toUpperCase();
  if (upper.length !== c.length) upper = c;
  const lower = upper.toLowerCase();
  return lower.length === upper.length ? lower : upper;
}

/** foldCase one character at a time: the definition, and the fallback of foldCase. */
export function foldCaseByChar(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    // In Node a surrogate pair is one character; njs indexes astral characters as one already.
    const end = code >= 0xd800 && code <= 0xdbff && i + 1 < s.length ? i + 2 : i + 1;
    out += foldChar(s.slice(i, end));
    i = end - 1;
  }
  return out;
}

/**
 * Case-folds `s` (ASCII and non-ASCII) as foldCaseByChar does. The gate and the policy compiler fold
 * request paths and rule paths with this one function.
 *
 * Fast route: upper- then lower-casing the whole string (~1 µs in njs, where a loop costs ~0.5 µs per
 * non-ASCII character and a regex replace callback ~50 µs per path) gives the same result whenever
 * both keep the length (no `ß` → `SS`, `İ` → `i̇`) and no `ς` appears (Node lower-cases a final `Σ`
 * to `ς` by context; the per-character fold gives `σ`). Otherwise it falls back to foldCaseByChar.
 * Not done: compatibility normalisation (NFKC: `ﬀ` → `ff`, fullwidth letters), which IIS does not do.
 */
export function foldCase(s: string): string {
  const upper = s.toUpperCase();
  if (upper.length === s.length) {
    const lower = upper.toLowerCase();
    if (lower.length === s.length && lower.indexOf('\u03c2') < 0) return lower;
  }
  return foldCaseByChar(s);
}

/** True when `c` is an ASCII hex digit (char code). */
function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * Returns the path to match rules against, or null when the path is ambiguous (see above).
 *
 * - `uri`: nginx's `$uri` (decoded, normalised, no query string);
 * - `requestUri`: nginx's raw `$request_uri`, used only to take the fast path: when its path part
 *   has no `%`, nothing was decoded;
 * - `utf8`: turns `uri` into text when it holds non-ASCII. In njs, `$uri` is a byte string (UTF-8
 *   bytes, one "character" each: `toLowerCase` and regex classes see bytes); the adapter passes a
 *   decoder that yields U+FFFD for invalid UTF-8. Omitted when `uri` is already text (Node).
 *
 * Guaranteed: the result starts with '/', has no `;`, `\`, `?`, `#`, control character, `%XX`, U+FFFD,
 * empty, `.` or `..` segment, and no segment ends in `.` or a space; a trailing '/' is kept. An ASCII
 * path keeps its case (the policy evaluator lower-cases), one with non-ASCII is case-folded (foldCase).
 * Not checked: the length (isPathTooLong), or Unicode normalisation (NFC/NFD forms stay distinct).
 */
export function policyPath(uri: string, requestUri: string, utf8?: (bytes: string) => string): string | null {
  if (typeof uri !== 'string' || uri.charCodeAt(0) !== 47) return null;
  const percent = requestUri.indexOf('%');
  const query = requestUri.indexOf('?');
  const decoded = percent >= 0 && (query < 0 || percent < query);
  // Fast path: one search for anything the slow path cares about (~0.4 µs in njs, half of the
  // equivalent indexOf calls; RegExp test would cost several times more).
  if (!decoded && uri.search(SUSPICIOUS) < 0) return uri;
  // ASCII checks on the bytes as given (a UTF-8 byte >= 0x80 is never an ASCII character), so an
  // ASCII path is scanned once; only a non-ASCII one is decoded and scanned again.
  let nonAscii = false;
  const n = uri.length;
  for (let i = 0; i < n; i++) {
    const c = uri.charCodeAt(i);
    if (c > 127) nonAscii = true;
    else if (c < 32 || c === 127 || c === 92 || c === 63 || c === 35) return null; // control characters, \ ? #
    else if (c === 37 && i + 2 < n && isHex(uri.charCodeAt(i + 1)) && isHex(uri.charCodeAt(i + 2))) return null; // %XX
  }
  let text = uri;
  if (nonAscii) {
    if (utf8 !== undefined) text = utf8(uri);
    // Invalid UTF-8 (decoded as U+FFFD), and the letters whose simple case mapping is ASCII: İ ı ſ K.
    if (text.search(/[\u0130\u0131\u017f\u212a\ufffd]/) >= 0) return null;
    text = foldCase(text);
  }
  const segments = text.split('/');
  const kept: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    let s = segments[i];
    const semi = s.indexOf(';');
    if (semi >= 0) s = s.slice(0, semi);
    if (s === '.' || s === '..') return null;
    // Windows (IIS) drops trailing dots and spaces: '/federation.' and '/federation%20' are '/federation'.
    const lastChar = s.charCodeAt(s.length - 1);
    if (lastChar === 46 || lastChar === 32) return null;
    if (s !== '') kept.push(s);
  }
  const trailing = segments[last] === '' || segments[last].charCodeAt(0) === 59; // '/x/' or '/x/;p'
  if (kept.length === 0) return '/';
  return '/' + kept.join('/') + (trailing ? '/' : '');
}

/**
 * True when the query string of `requestUri` (nginx's raw $request_uri) has a parameter whose decoded
 * name starts with `_method` (any case: `_method`, `_METHOD`, `%5fmethod`, `_method[]`). Express's
 * method-override, Laravel and Symfony read it as the request's real method, so a POST carrying
 * `_method=DELETE` would dodge a rule about DELETE. Not checked: `_method` in a form body (the gate
 * never reads bodies).
 */
export function hasMethodOverrideParam(requestUri: string): boolean {
  const q = requestUri.indexOf('?');
  if (q < 0) return false;
  // The common case, no '_' and no '%5' in the query, costs two searches and allocates nothing.
  if (requestUri.indexOf('_', q) < 0 && requestUri.indexOf('%5', q) < 0) return false;
  const query = requestUri.slice(q + 1);
  if (query.search(/_method|%5f/i) < 0) return false;
  const params = query.split(/[&;]/);
  for (let i = 0; i < params.length; i++) {
    let name = params[i];
    const eq = name.indexOf('=');
    if (eq >= 0) name = name.slice(0, eq);
    name = name.replace(/\+/g, ' ');
    try {
      name = decodeURIComponent(name);
    } catch (e) {
      name = name.replace(/%5f/gi, '_');
    }
    if (name.toLowerCase().indexOf('_method') === 0) return true;
  }
  return false;
}
