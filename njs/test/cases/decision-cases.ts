/**
 * Whole-request decision cases, shared by jest (decideRequest) and the njs runner (gate.check on
 * a fake request, checking the returned action and the js_var values). njs 0.7.9 subset.
 */
import type { CookieHeaders } from '../../src/core/cookie.js';
import type { DenyReason } from '../../src/core/session-contract.js';
import { UNKNOWN_KEY, signToken, validClaims, withClaims } from './fixtures.js';

export interface DecisionExpectation {
  action: 'allow' | 'login' | 'deny';
  reason?: DenyReason;
  location?: string;
  /** Exact map of forwarded headers (claim -> value) on allow. */
  headers?: { [claim: string]: string };
  upstreamCookie?: string;
}

export interface DecisionCase {
  name: string;
  cookie: CookieHeaders;
  accept?: string;
  requestUri: string;
  remoteAddr?: string;
  expect: DecisionExpectation;
}

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

export function decisionCases(now: number): DecisionCase[] {
  const claims = validClaims(now);
  const token = signToken(claims);
  const expired = signToken(withClaims(claims, { exp: now - 3600 }));
  const forged = signToken(claims, UNKNOWN_KEY);
  const allHeaders = {
    sub: claims.sub,
    username: 'alice',
    name: 'Alice Example',
    email: 'alice@example.test',
    groups: 'staff,federation',
    src: 'local',
    sid: claims.sid,
  };
  const hostile = signToken(
    withClaims(claims, {
      name: 'Alice\r\nX-Payload-Role: admin',
      email: { nested: 'object' },
      groups: ['staff\n', 'a\u0000b', 'c\u007fd'],
      src: 1,
      sid: true,
      username: 'alice\ttab',
    }),
  );
  // DEL is the one control character JSON leaves unescaped: no backslash in the payload text.
  const onlyDel = signToken(withClaims(claims, { name: 'Alice\u007fExample' }));
  return [
    {
      name: 'removes DEL even when the payload has no escape sequence',
      cookie: 'gw_session=' + onlyDel,
      accept: 'application/json',
      requestUri: '/',
      expect: { action: 'allow', headers: Object.assign({}, allHeaders, { name: 'AliceExample' }), upstreamCookie: '' },
    },
    {
      name: 'allows a valid session and forwards every claim header',
      cookie: 'gw_session=' + token,
      accept: 'application/json',
      requestUri: '/api/things',
      expect: { action: 'allow', headers: allHeaders, upstreamCookie: '' },
    },
    {
      name: 'strips the session cookie and keeps the others for the upstream',
      cookie: 'theme=dark; gw_session=' + token + '; lang=en',
      accept: BROWSER_ACCEPT,
      requestUri: '/',
      expect: { action: 'allow', headers: allHeaders, upstreamCookie: 'theme=dark; lang=en' },
    },
    {
      name: 'sanitises header values (CR/LF, NUL, DEL, tab removed; numbers and booleans stringified; objects skipped)',
      cookie: 'gw_session=' + hostile,
      accept: 'application/json',
      requestUri: '/',
      expect: {
        action: 'allow',
        headers: {
          sub: claims.sub,
          username: 'alicetab',
          name: 'AliceX-Payload-Role: admin',
          groups: 'staff,ab,cd',
          src: '1',
          sid: 'true',
        },
        upstreamCookie: '',
      },
    },
    {
      name: 'omits headers for claims the token does not carry',
      cookie: 'gw_session=' + signToken(withClaims(claims, { name: undefined, email: undefined, groups: undefined })),
      accept: 'application/json',
      requestUri: '/',
      expect: {
        action: 'allow',
        headers: { sub: claims.sub, username: 'alice', src: 'local', sid: claims.sid },
        upstreamCookie: '',
      },
    },
    {
      name: 'sends a browser without a session to the login page with rd = the raw request URI',
      cookie: undefined,
      accept: BROWSER_ACCEPT,
      requestUri: '/app/page?x=1&y=%20z',
      expect: { action: 'login', reason: 'token-missing', location: '/login?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D%2520z' },
    },
    {
      name: 'matches text/html case-insensitively',
      cookie: 'a=1',
      accept: 'TEXT/HTML',
      requestUri: '/',
      expect: { action: 'login', reason: 'token-missing', location: '/login?rd=%2F' },
    },
    {
      name: 'denies an API client without a session (no redirect)',
      cookie: undefined,
      accept: 'application/json',
      requestUri: '/api/things',
      expect: { action: 'deny', reason: 'token-missing' },
    },
    { name: 'denies a client without an Accept header', cookie: undefined, requestUri: '/', expect: { action: 'deny', reason: 'token-missing' } },
    { name: 'denies Accept */* (curl)', cookie: undefined, accept: '*/*', requestUri: '/', expect: { action: 'deny', reason: 'token-missing' } },
    {
      name: 'sends a browser with an expired session to the login page',
      cookie: 'gw_session=' + expired,
      accept: BROWSER_ACCEPT,
      requestUri: '/reports',
      expect: { action: 'login', reason: 'token-expired', location: '/login?rd=%2Freports' },
    },
    {
      name: 'denies an API client with a forged token',
      cookie: 'gw_session=' + forged,
      accept: 'application/json',
      requestUri: '/api',
      expect: { action: 'deny', reason: 'token-invalid' },
    },
    {
      name: 'sends a browser with a duplicated session cookie to the login page',
      cookie: 'gw_session=' + token + '; gw_session=' + forged,
      accept: BROWSER_ACCEPT,
      requestUri: '/',
      expect: { action: 'login', reason: 'token-duplicate', location: '/login?rd=%2F' },
    },
    {
      name: 'denies a valid token presented from another address',
      cookie: 'gw_session=' + token,
      accept: 'application/json',
      requestUri: '/',
      remoteAddr: '198.51.100.9',
      expect: { action: 'deny', reason: 'ip-mismatch' },
    },
    {
      name: 'denies a malformed (quoted) session cookie',
      cookie: 'gw_session="' + token + '"',
      accept: 'application/json',
      requestUri: '/',
      expect: { action: 'deny', reason: 'token-invalid' },
    },
  ];
}
