import { describe, expect, it } from '@jest/globals';
import { COOKIE_NAME, readCookieCases, removeCookieCases } from '../../test/cases/cookie-cases.js';
import { readCookie, readCookies, removeCookie } from './cookie.js';
import type { CookieHeaders } from './cookie.js';
import type { ExpectedCookie } from '../../test/cases/cookie-cases.js';

describe('readCookie', () => {
  it.each(readCookieCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const result = readCookie(c.headers, COOKIE_NAME);
    expect(result).toMatchObject(c.expect);
    // The upstream header from the same scan is exactly what removeCookie gives.
    if (result.status === 'ok') expect(result.rest).toBe(removeCookie(c.headers, COOKIE_NAME));
  });
});

describe('removeCookie', () => {
  it.each(removeCookieCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(removeCookie(c.headers, COOKIE_NAME)).toBe(c.expect);
  });
});

// The gate scans with indexOf for speed; this is the obvious split-on-';' reading of the same rules,
// used as an oracle on generated headers.
function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}
function pairsOf(headers: CookieHeaders): string[] {
  const list = headers === undefined ? [] : typeof headers === 'string' ? [headers] : headers;
  const pairs: string[] = [];
  for (const header of list) pairs.push(...header.split(';'));
  return pairs.map(trimOws);
}
function nameOf(pair: string): string | undefined {
  const eq = pair.indexOf('=');
  return eq < 0 ? undefined : trimOws(pair.slice(0, eq));
}
function referenceRead(headers: CookieHeaders, name: string): ExpectedCookie {
  const values = pairsOf(headers)
    .filter((p) => nameOf(p) === name)
    .map((p) => trimOws(p.slice(p.indexOf('=') + 1)));
  if (values.length > 1) return { status: 'duplicate' };
  if (values.length === 0 || values[0] === '') return { status: 'missing' };
  return { status: 'ok', value: values[0] };
}
function normalise(headers: CookieHeaders): string {
  return pairsOf(headers)
    .filter((p) => p !== '')
    .join('; ');
}
function referenceRemove(headers: CookieHeaders, name: string): string {
  return pairsOf(headers)
    .filter((p) => p !== '' && nameOf(p) !== name)
    .join('; ');
}

/** Deterministic generator (mulberry32), so a failure is reproducible from the printed header. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generateHeaders(count: number): CookieHeaders[] {
  const random = prng(20240601);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  const names = ['gw_session', 'gw_session', 'xgw_session', 'GW_SESSION', 'gw_session_old', 'a', '', 'gw', 'session', 'gw_session_asr', 'gw_session_asr_fin', 'gw_session_asrx', 'gw_session_asr_', 'gw_session_asr_ fin', 'gw_session_asr_other'];
  const values = ['TOKEN', '', '"q"', 'x=y', 'gw_session=z', 'a b', ' gw_session', 'h.eyJ.s', 'gw_session_asr=w'];
  const ows = ['', ' ', '\t', ' \t'];
  const separators = [';', '; ', ' ;\t', ';;', '; ;'];
  const out: CookieHeaders[] = [];
  for (let n = 0; n < count; n++) {
    const header = () => {
      let s = '';
      const pairs = 1 + Math.floor(random() * 4);
      for (let i = 0; i < pairs; i++) {
        if (i > 0) s += pick(separators);
        s += pick(ows) + pick(names) + pick(ows);
        if (random() < 0.9) s += '=' + pick(ows) + pick(values) + pick(ows);
      }
      return s;
    };
    out.push(random() < 0.2 ? [header(), header()] : header());
  }
  return out;
}

describe('cookie scanning agrees with a split-on-semicolon reference', () => {
  const generated = generateHeaders(3000);
  it('readCookie', () => {
    for (const headers of generated) {
      const result = readCookie(headers, COOKIE_NAME);
      const subset = result.status === 'ok' ? { status: result.status, value: result.value } : result;
      expect({ headers, result: subset }).toEqual({ headers, result: referenceRead(headers, COOKIE_NAME) });
      if (result.status === 'ok') expect({ headers, rest: result.rest }).toEqual({ headers, rest: removeCookie(headers, COOKIE_NAME) });
    }
  });
  it('removeCookie (up to separator formatting)', () => {
    for (const headers of generated) {
      const kept = removeCookie(headers, COOKIE_NAME);
      expect({ headers, kept: normalise(kept) }).toEqual({ headers, kept: referenceRemove(headers, COOKIE_NAME) });
      expect(readCookie(kept, COOKIE_NAME)).toEqual({ status: 'missing' });
    }
  });
});

describe('readCookies: the session cookie and its assertion companion in one scan', () => {
  const generated = generateHeaders(3000);
  const FAMILY = 'gw_session_asr';
  const inFamily = (n: string | undefined) => n !== undefined && (n === FAMILY || n.startsWith(FAMILY + '_'));
  const pairsWithout = (headers: CookieHeaders) =>
    pairsOf(headers)
      .filter((p) => p !== '' && nameOf(p) !== COOKIE_NAME && !inFamily(nameOf(p)))
      .join('; ');
  it.each([[''], ['fin']])("agrees with the split-on-';' reference, app %j", (app) => {
    const companion = app === '' ? FAMILY : FAMILY + '_' + app;
    for (const headers of generated) {
      const result = readCookies(headers, COOKIE_NAME, FAMILY, app);
      const session = referenceRead(headers, COOKIE_NAME);
      if (session.status !== 'ok') {
        expect({ headers, status: result.status }).toEqual({ headers, status: session.status });
        // Without a session, assertion cookies are still cut from what an app would receive.
        if (result.status === 'missing' && result.rest !== undefined) expect({ headers, rest: normalise(result.rest) }).toEqual({ headers, rest: pairsWithout(headers) });
        continue;
      }
      expect(result.status).toBe('ok');
      if (result.status !== 'ok') continue;
      expect({ headers, value: result.value }).toEqual({ headers, value: session.value });
      const other = referenceRead(headers, companion);
      expect({ headers, companion: result.companion }).toEqual({ headers, companion: other.status === 'ok' ? other.value : null });
      // Every assertion cookie is cut, whichever app it is for.
      expect({ headers, rest: normalise(result.rest) }).toEqual({ headers, rest: pairsWithout(headers) });
    }
  });
  it('without a family it is readCookie', () => {
    for (const headers of generated) {
      const result = readCookies(headers, COOKIE_NAME, '', '');
      const plain = readCookie(headers, COOKIE_NAME);
      expect({ headers, result }).toEqual({ headers, result: plain.status === 'ok' ? { ...plain, companion: null } : plain });
    }
  });
  it.each([
    ['session then assertion', 'gw_session=T; gw_session_asr=A', '', 'T', 'A', ''],
    ['assertion first, other cookies kept', 'gw_session_asr=A; a=1; gw_session=T; b=2', '', 'T', 'A', 'a=1; b=2'],
    ["another app's assertion is never read, and never sent upstream (it could be replayed to that app)", 'gw_session=T; gw_session_asr_fin=F; c=1', '', 'T', null, 'c=1'],
    ["a named app reads its own, not the default app's", 'gw_session_asr=A; gw_session=T; gw_session_asr_fin=F', 'fin', 'T', 'F', ''],
    ['a lookalike name is no assertion', 'gw_session=T; gw_session_asrx=A', '', 'T', null, 'gw_session_asrx=A'],
    ['two assertion cookies (one planted for a parent domain): none is read', 'gw_session=T; gw_session_asr=A; gw_session_asr=B', '', 'T', null, ''],
    ['an empty app name after the family is no app', 'gw_session=T; gw_session_asr_=A', '', 'T', null, ''],
    ['across several Cookie headers', ['gw_session_asr=A', 'gw_session=T; c=3'], '', 'T', 'A', 'c=3'],
    ['no session, assertions left after a sign-out: cut all the same', 'a=1; gw_session_asr=A; gw_session_asr_fin=F', '', '', null, 'a=1'],
    // A header of cut pairs only is skipped whole (no slicing); any other pair keeps it on the slow path.
    ['a header of only the session and assertion, with spaces and tabs', ' gw_session = T ;\tgw_session_asr=A \t', '', 'T', 'A', ''],
    ['a foreign pair between them is kept', 'gw_session=T; x=1; gw_session_asr=A', '', 'T', 'A', 'x=1'],
    ['a trailing separator', 'gw_session=T; gw_session_asr=A;', '', 'T', 'A', ''],
    ['a lookalike before them is kept', 'gw_sessionx=1; gw_session=T; gw_session_asr=A', '', 'T', 'A', 'gw_sessionx=1'],
    ['one header whole, the next one not', ['gw_session=T; gw_session_asr=A', 'c=3; d=4'], '', 'T', 'A', 'c=3; d=4'],
  ] as Array<[string, CookieHeaders, string, string, string | null, string]>)('%s', (_name, headers, app, value, companion, rest) => {
    expect(readCookies(headers, COOKIE_NAME, FAMILY, app)).toEqual(value === '' ? { status: 'missing', rest } : { status: 'ok', value, companion, rest });
  });
});
