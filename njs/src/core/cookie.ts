/**
 * Strict Cookie header parsing for the gate. nginx's own `$cookie_NAME` takes the first match,
 * matches names case-insensitively and treats ',' as a separator (see njs-notes), which lets a
 * second, attacker-planted cookie (e.g. set for a parent domain or another path) shadow or be
 * shadowed by the real one. Here a name that appears twice is refused outright.
 *
 * The header is scanned with indexOf rather than split into pairs: in njs every split piece is an
 * allocation in a per-request VM, and this runs on every request (measured: ~5 µs -> ~1 µs).
 * The result is the same as splitting on ';' and trimming each pair (the jest tests compare the
 * two on generated headers).
 *
 * njs 0.7.9 subset only: no destructuring, spread, for-of, default parameters, Map/Set.
 */

/**
 * `rest` (status ok only) is the Cookie header to send upstream: every other pair, as
 * removeCookie would return it. It comes from the same scan, so the allow path never parses the
 * header twice.
 */
export type CookieResult = { status: 'missing' } | { status: 'duplicate' } | { status: 'ok'; value: string; rest: string };

/** One or several Cookie header values, as nginx/njs or Node hand them over. */
export type CookieHeaders = string | string[] | undefined;

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Trims spaces and tabs only (String.prototype.trim also eats \n, \v, NBSP, ...). */
function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function toList(cookieHeaders: CookieHeaders): string[] {
  if (cookieHeaders === undefined || cookieHeaders === null) return [];
  if (typeof cookieHeaders === 'string') return [cookieHeaders];
  return cookieHeaders;
}

/**
 * Index of the '=' of the next pair at or after `from` whose name is exactly `name`, or -1.
 * A pair's name is what lies between the pair start (string start or ';') and its first '=',
 * without surrounding spaces/tabs. `name` must be a cookie-name token (no ';', '=', space).
 */
function findPairEquals(header: string, name: string, from: number): number {
  const n = header.length;
  let i = header.indexOf(name, from);
  while (i >= 0) {
    let before = i - 1;
    while (before >= 0 && isOws(header.charCodeAt(before))) before--;
    let after = i + name.length;
    while (after < n && isOws(header.charCodeAt(after))) after++;
    if ((before < 0 || header.charCodeAt(before) === 0x3b) && after < n && header.charCodeAt(after) === 0x3d) return after;
    i = header.indexOf(name, i + 1);
  }
  return -1;
}

/** End of the pair containing `index`: the next ';' or the end of the header. */
function pairEnd(header: string, index: number): number {
  // search() rather than indexOf(';', index): njs's indexOf calls memcmp at every position, PCRE's
  // search skips to the character (callgrind, a 460-byte token: about 7,000 fewer CPU instructions
  // per request, the slice included). The regex is built per call: njs runs module code per request.
  const semicolon = (index === 0 ? header : header.slice(index)).search(/;/);
  return semicolon < 0 ? header.length : index + semicolon;
}

/**
 * Finds the cookie `name` in one or several Cookie header values.
 *
 * Guarantees: pairs are separated by ';', spaces and tabs around names and values are ignored,
 * the name is matched exactly and case-sensitively (`xgw_session` and `GW_SESSION` do not match
 * `gw_session`), every header is searched, and a name that occurs more than once, even with the
 * same value, yields `duplicate`. An empty value yields `missing`.
 *
 * Not done: quoted values are returned with their quotes (RFC 6265 allows DQUOTEs around a
 * cookie-value; session tokens never have them, so they fail the strict base64url check later);
 * values are not percent-decoded; ',' is not a separator; the value's characters are not checked.
 * `name` must be a valid cookie name (an RFC 6265 token); other names may simply never match.
 */
export function readCookie(cookieHeaders: CookieHeaders, name: string): CookieResult {
  const headers = toList(cookieHeaders);
  let value: string | undefined;
  let foundIn = -1;
  let foundEq = -1;
  for (let h = 0; h < headers.length; h++) {
    const header = headers[h];
    if (typeof header !== 'string') continue;
    let eq = findPairEquals(header, name, 0);
    while (eq >= 0) {
      if (value !== undefined) return { status: 'duplicate' };
      const end = pairEnd(header, eq);
      value = trimOws(header.slice(eq + 1, end));
      foundIn = h;
      foundEq = eq;
      eq = findPairEquals(header, name, end);
    }
  }
  if (value === undefined || value === '') return { status: 'missing' };
  // Exactly one pair carries the name: the upstream header is every header, that pair cut out.
  let rest = '';
  for (let h = 0; h < headers.length; h++) {
    const header = headers[h];
    if (typeof header !== 'string') continue;
    const kept = trimOws(h === foundIn ? cutPair(header, foundEq) : header);
    if (kept !== '') rest = rest === '' ? kept : rest + '; ' + kept;
  }
  return { status: 'ok', value: value, rest: rest };
}

/** `header` without the pair whose '=' is at `eq`, and without one ';' next to it. */
function cutPair(header: string, eq: number): string {
  const start = header.lastIndexOf(';', eq) + 1;
  const end = pairEnd(header, eq);
  if (end < header.length) return header.slice(0, start) + header.slice(end + 1);
  return header.slice(0, start > 0 ? start - 1 : 0);
}

/**
 * The Cookie header to send upstream: every cookie called `name` (exact, case-sensitive) is
 * removed, so the session token is never forwarded. Everything else is kept as the client sent
 * it (the other pairs and their separators are not re-formatted; only the ends are trimmed of
 * spaces/tabs), so `a=1; gw_session=T; b=2` becomes `a=1; b=2`. Several headers are joined with
 * '; '. Returns '' when nothing is left, which makes `proxy_set_header Cookie $gate_cookie;` send
 * no Cookie header at all.
 */
export function removeCookie(cookieHeaders: CookieHeaders, name: string): string {
  const headers = toList(cookieHeaders);
  let out = '';
  for (let h = 0; h < headers.length; h++) {
    let header = headers[h];
    if (typeof header !== 'string') continue;
    let eq = findPairEquals(header, name, 0);
    while (eq >= 0) {
      header = cutPair(header, eq);
      eq = findPairEquals(header, name, 0);
    }
    header = trimOws(header);
    if (header !== '') out = out === '' ? header : out + '; ' + header;
  }
  return out;
}

/**
 * The value a `Set-Cookie` header line gives the cookie `name`: `gw_session=abc; Path=/; HttpOnly`
 * gives `abc`. null when the line sets another cookie, or an empty value (a clearing cookie).
 */
export function setCookieValue(setCookie: string, name: string): string | null {
  if (setCookie.slice(0, name.length + 1) !== name + '=') return null;
  const end = setCookie.indexOf(';');
  const value = trimOws(setCookie.slice(name.length + 1, end < 0 ? setCookie.length : end));
  return value === '' ? null : value;
}

/** readCookies' answer: the session cookie as readCookie reads it, plus the app's assertion cookie. */
export type CookiePairResult =
  /** `rest`: with assertion cookies but no session cookie, the header without them (and without an empty session cookie). */
  | { status: 'missing'; rest?: string }
  | { status: 'duplicate' }
  | {
      status: 'ok';
      value: string;
      /** The companion cookie's value; null when it is missing, empty or sent more than once. */
      companion: string | null;
      /** Every other pair: the Cookie header without `name` and without any cookie of the companion family. */
      rest: string;
    };

/**
 * readCookie for `name` and, in the same scan, the app's assertion cookie: `family` (e.g.
 * `gw_session_asr`, which must begin with `name`) for the default app (`app` ''), `family_app`
 * otherwise. Same rules as readCookie for each (exact, case-sensitive names; a name present twice
 * counts as duplicate; an empty value as missing). `rest` is the header without the session cookie
 * and without EVERY cookie of the family (`family` and `family_*`), so that no app's upstream ever
 * receives another app's assertion (which it could replay to that app).
 *
 * Why not readCookie twice: njs's indexOf compares at every position (memcmp per byte), and an
 * assertion is 500 bytes. One pass that jumps from pair to pair reads each byte about once.
 * With `family` '' it is readCookie with `companion: null` (what the gate calls without assertions).
 * Not checked: that `family` starts with `name` (if not, no companion is ever found: missing).
 */
export function readCookies(cookieHeaders: CookieHeaders, name: string, family: string, app: string): CookiePairResult {
  const headers = toList(cookieHeaders);
  let value: string | undefined;
  let other: string | undefined;
  let otherDuplicate = false;
  // Pairs to cut from `rest`: header index, '=' position, pair end (in the order found).
  const cuts: number[] = [];
  // Headers made of cut pairs only (the usual `session; assertion`): `rest` skips them without
  // slicing them apart (the copies of a 500-byte assertion cost more than the scan).
  const whole: boolean[] = [];
  const suffix = family.slice(name.length);
  for (let h = 0; h < headers.length; h++) {
    const header = headers[h];
    whole.push(false);
    if (typeof header !== 'string') continue;
    const n = header.length;
    // End of the last cut pair while every pair from the header's start has been cut, else -2.
    let chain = -1;
    let i = header.indexOf(name, 0);
    while (i >= 0) {
      let before = i - 1;
      while (before >= 0 && isOws(header.charCodeAt(before))) before--;
      if (before < 0 || header.charCodeAt(before) === 0x3b) {
        let after = i + name.length;
        // 1: the session cookie; 2: the app's assertion; 3: another app's assertion.
        let which = 0;
        if (suffix !== '' && header.substr(after, suffix.length) === suffix) {
          let a = after + suffix.length;
          // The app the pair's name names: '' for `family` itself, `x` for `family_x`, null for a
          // `family_` name that is no app's (empty, or starting with a space: cut, never read).
          let member: string | null = '';
          if (a < n && header.charCodeAt(a) === 0x5f) {
            // `family_<app>`: the name runs to the '=' (no '=' before the pair's end: no pair).
            // No ';' between: looked for backwards from the '=', never across the value.
            const eq = header.indexOf('=', a);
            if (eq > a && header.lastIndexOf(';', eq) < a) {
              let e = eq;
              while (e > a + 1 && isOws(header.charCodeAt(e - 1))) e--;
              member = e > a + 1 && !isOws(header.charCodeAt(a + 1)) ? header.slice(a + 1, e) : null;
              a = eq;
            } else a = -1;
          }
          if (a >= 0) {
            while (a < n && isOws(header.charCodeAt(a))) a++;
            if (a < n && header.charCodeAt(a) === 0x3d) {
              which = member === app ? 2 : 3;
              after = a;
            }
          }
        }
        if (which === 0) {
          while (after < n && isOws(header.charCodeAt(after))) after++;
          if (after < n && header.charCodeAt(after) === 0x3d) which = 1;
        }
        if (which !== 0) {
          // pairEnd's search without its copies: the header's first pair (no ';' before it) ends at
          // the header's first ';', searched in place; a later pair's search keeps the tail it
          // sliced, which is the value itself when the pair is last (one copy rather than two).
          const tail = before < 0 ? header : header.slice(after + 1);
          const semicolon = tail.search(/;/);
          const end = semicolon < 0 ? n : before < 0 ? semicolon : after + 1 + semicolon;
          const raw = before >= 0 && semicolon < 0 ? tail : header.slice(after + 1, end);
          if (which === 1) {
            if (value !== undefined) return { status: 'duplicate' };
            value = trimOws(raw);
          } else if (which === 2) {
            if (other !== undefined) otherDuplicate = true;
            else other = trimOws(raw);
          }
          cuts.push(h, after, end);
          chain = before < 0 || before === chain ? end : -2;
          i = header.indexOf(name, end);
          continue;
        }
      }
      i = header.indexOf(name, i + 1);
    }
    if (chain === n) whole[h] = true;
  }
  const missing = value === undefined || value === '';
  // No session, and no assertion cookie either: nothing to cut (the gate passes the header as is).
  if (missing && (family === '' || cuts.length === 0)) return { status: 'missing' };
  let rest = '';
  for (let h = 0; h < headers.length; h++) {
    let header = headers[h];
    if (typeof header !== 'string' || whole[h]) continue;
    // Cut from the last pair back, so the earlier pairs' positions still hold (found in order).
    for (let c = cuts.length - 3; c >= 0; c -= 3) {
      if (cuts[c] === h) header = cutPairAt(header, cuts[c + 1], cuts[c + 2]);
    }
    const kept = trimOws(header);
    if (kept !== '') rest = rest === '' ? kept : rest + '; ' + kept;
  }
  // Assertion cookies without a session (left after a sign-out): an anonymous request a public rule
  // lets through must not carry them to its app either.
  if (missing) return { status: 'missing', rest: rest };
  return { status: 'ok', value: value as string, companion: !otherDuplicate && other !== undefined && other !== '' ? other : null, rest: rest };
}

/** cutPair with the pair's end already known (no second scan of its value). */
function cutPairAt(header: string, eq: number, end: number): string {
  const start = header.lastIndexOf(';', eq) + 1;
  if (end < header.length) return header.slice(0, start) + header.slice(end + 1);
  return header.slice(0, start > 0 ? start - 1 : 0);
}
