/**
 * Cookie header cases, shared by jest (readCookie/removeCookie) and the njs runner (through the
 * shipped gate.check, with TOKEN replaced by a valid session token). njs 0.7.9 subset.
 */
import type { CookieHeaders } from '../../src/core/cookie.js';

/** What readCookie must find (its `rest` is checked against removeCookie separately). */
export type ExpectedCookie = { status: 'missing' } | { status: 'duplicate' } | { status: 'ok'; value: string };

/** Placeholder for the session token; the njs runner substitutes a real one. */
export const TOKEN = 'TOKEN';
export const COOKIE_NAME = 'gw_session';

export interface ReadCookieCase {
  name: string;
  headers: CookieHeaders;
  expect: ExpectedCookie;
}

export interface RemoveCookieCase {
  name: string;
  headers: CookieHeaders;
  /** The Cookie header sent upstream. */
  expect: string;
  /**
   * What the gate sends when njs hands several Cookie headers over joined with ';' (measured on
   * njs 0.7.9: r.headersIn.Cookie), if that differs from `expect`.
   */
  expectJoined?: string;
}

export const readCookieCases: ReadCookieCase[] = [
  { name: 'no Cookie header is missing', headers: undefined, expect: { status: 'missing' } },
  { name: 'an empty Cookie header is missing', headers: '', expect: { status: 'missing' } },
  { name: 'only other cookies is missing', headers: 'a=1; b=2', expect: { status: 'missing' } },
  { name: 'reads the only cookie', headers: 'gw_session=TOKEN', expect: { status: 'ok', value: TOKEN } },
  { name: 'reads the cookie among others', headers: 'a=1; gw_session=TOKEN; b=2', expect: { status: 'ok', value: TOKEN } },
  { name: "reads pairs separated by ';' without spaces", headers: 'a=1;gw_session=TOKEN;b=2', expect: { status: 'ok', value: TOKEN } },
  {
    name: 'trims spaces and tabs around name and value',
    headers: ' \tgw_session \t= \tTOKEN \t; a=1',
    expect: { status: 'ok', value: TOKEN },
  },
  {
    name: 'ignores similarly named cookies (xgw_session, gw_session_old, GW_SESSION)',
    headers: 'xgw_session=evil; gw_session_old=old; GW_SESSION=upper; gw_session=TOKEN; gw_sessionx=x',
    expect: { status: 'ok', value: TOKEN },
  },
  {
    name: 'a cookie with only similar names is missing (no case-insensitive or prefix match)',
    headers: 'xgw_session=TOKEN; GW_SESSION=TOKEN; gw_session_=TOKEN',
    expect: { status: 'missing' },
  },
  { name: 'the same cookie twice with the same value is a duplicate', headers: 'gw_session=TOKEN; gw_session=TOKEN', expect: { status: 'duplicate' } },
  { name: 'the same cookie twice with different values is a duplicate', headers: 'gw_session=TOKEN; a=1; gw_session=planted', expect: { status: 'duplicate' } },
  { name: 'a planted empty cookie next to the real one is a duplicate', headers: 'gw_session=; gw_session=TOKEN', expect: { status: 'duplicate' } },
  {
    name: 'the cookie in two Cookie headers is a duplicate',
    headers: ['gw_session=TOKEN', 'a=1; gw_session=planted'],
    expect: { status: 'duplicate' },
  },
  { name: 'reads the cookie from the second of several Cookie headers', headers: ['a=1', 'b=2; gw_session=TOKEN'], expect: { status: 'ok', value: TOKEN } },
  { name: 'an empty value is missing', headers: 'gw_session=; a=1', expect: { status: 'missing' } },
  { name: 'a value of only spaces is missing', headers: 'gw_session=   ', expect: { status: 'missing' } },
  { name: "a bare name without '=' is not the cookie", headers: 'gw_session; a=1', expect: { status: 'missing' } },
  { name: 'keeps quotes around a quoted value (not unquoted)', headers: 'gw_session="TOKEN"', expect: { status: 'ok', value: '"TOKEN"' } },
  { name: "',' is not a separator (nginx's $cookie_ would find it)", headers: 'a=1, gw_session=TOKEN', expect: { status: 'missing' } },
  { name: "keeps '=' inside the value", headers: 'gw_session=TOKEN==', expect: { status: 'ok', value: 'TOKEN==' } },
];

export const removeCookieCases: RemoveCookieCase[] = [
  { name: 'sends no Cookie header when the session cookie was the only one', headers: 'gw_session=TOKEN', expect: '' },
  { name: 'keeps the other cookies in order', headers: 'a=1; gw_session=TOKEN; b=2', expect: 'a=1; b=2' },
  { name: "keeps the client's own separators", headers: 'a=1;gw_session=TOKEN;b=2', expect: 'a=1;b=2' },
  { name: 'removes the first pair with its separator', headers: 'gw_session=TOKEN; b=2', expect: 'b=2' },
  { name: 'removes the last pair with its separator', headers: 'a=1; gw_session=TOKEN', expect: 'a=1' },
  {
    name: 'merges several Cookie headers',
    headers: ['a=1', 'gw_session=TOKEN', 'c=3'],
    expect: 'a=1; c=3',
    expectJoined: 'a=1;c=3',
  },
  {
    name: 'keeps similarly named cookies',
    headers: 'xgw_session=1; gw_session=TOKEN; GW_SESSION=2; gw_session_old=3',
    expect: 'xgw_session=1; GW_SESSION=2; gw_session_old=3',
  },
  { name: 'keeps the rest exactly as sent, empty pieces included', headers: 'a=1;; ;b=2; gw_session=TOKEN', expect: 'a=1;; ;b=2' },
  { name: 'removes every pair with the name', headers: 'gw_session=TOKEN; a=1; gw_session=x', expect: 'a=1' },
  { name: 'trims spaces and tabs at the ends', headers: ' \ta=1; gw_session=TOKEN \t', expect: 'a=1' },
  { name: "keeps a nameless cookie (no '=')", headers: 'flag; gw_session=TOKEN', expect: 'flag' },
  { name: 'keeps everything when there is no session cookie', headers: 'a=1; b="x y"', expect: 'a=1; b="x y"' },
  { name: 'returns an empty header for no Cookie header', headers: undefined, expect: '' },
];
