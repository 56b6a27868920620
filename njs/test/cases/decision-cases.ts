/**
 * Whole-request decision cases, shared by jest (decideRequest) and the njs runner (gate.check on
 * a fake request, checking the returned action and the js_var values). njs 0.7.9 subset.
 */
import type { CookieHeaders } from '../../src/core/cookie.js';
import type { DenyReason } from '../../src/core/session-contract.js';
import { UNKNOWN_KEY, signToken, validClaims, withClaims } from './fixtures.js';

export interface DecisionExpectation {
  action: 'allow' | 'login' | 'deny' | 'renew';
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
  /**
   * The sids in nginx's revocation dict (ngx.shared.gate_revoked, njs >= 0.8). Absent: no dict at
   * all, as on njs 0.7.9.
   */
  revoked?: string[];
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
  // A user in 1,000 groups with long, non-ASCII names, commas and '%' (Entra/Tableau names are free
  // text): every name must arrive as one list item. The expected text is spelled out by hand.
  const manyGroups: string[] = [];
  const manyExpected: string[] = [];
  for (let i = 0; i < 1000; i++) {
    manyGroups.push('Abteilung ' + i + ' Ärzte, Köln – 100% Vertrieb/Außendienst Nordrhein-Westfalen');
    manyExpected.push('Abteilung ' + i + ' %C3%84rzte%2C K%C3%B6ln %E2%80%93 100%25 Vertrieb/Au%C3%9Fendienst Nordrhein-Westfalen');
  }
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
          groups: 'staff%0A,a%00b,c%7Fd',
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
      name: "encodes a comma in a group name, so 'Sales,Federation' cannot become two groups",
      cookie: 'gw_session=' + signToken(withClaims(claims, { groups: ['Sales,Federation', 'Crew'] })),
      accept: 'application/json',
      requestUri: '/',
      expect: { action: 'allow', headers: Object.assign({}, allHeaders, { groups: 'Sales%2CFederation,Crew' }), upstreamCookie: '' },
    },
    {
      name: "encodes '%', non-ASCII (as UTF-8, also outside the BMP) and nothing else in group names",
      cookie: 'gw_session=' + signToken(withClaims(claims, { groups: ['100%', 'Zoë', '日本', '🚀 Team', "a b;c/d=e&f+g'h"] })),
      accept: 'application/json',
      requestUri: '/',
      expect: {
        action: 'allow',
        headers: Object.assign({}, allHeaders, { groups: "100%25,Zo%C3%AB,%E6%97%A5%E6%9C%AC,%F0%9F%9A%80 Team,a b;c/d=e&f+g'h" }),
        upstreamCookie: '',
      },
    },
    {
      name: 'forwards 1,000 long non-ASCII group names, each one list item',
      cookie: 'gw_session=' + signToken(withClaims(claims, { groups: manyGroups })),
      accept: 'application/json',
      requestUri: '/',
      expect: { action: 'allow', headers: Object.assign({}, allHeaders, { groups: manyExpected.join(',') }), upstreamCookie: '' },
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
      name: 'renews the expired session of a browser, with the login page to fall back on',
      cookie: 'gw_session=' + expired,
      accept: BROWSER_ACCEPT,
      requestUri: '/reports',
      expect: { action: 'renew', reason: 'token-expired', location: '/login?rd=%2Freports' },
    },
    {
      name: 'renews the expired session of an API client (no login page to fall back on)',
      cookie: 'gw_session=' + expired,
      accept: 'application/json',
      requestUri: '/api/reports',
      expect: { action: 'renew', reason: 'token-expired', location: '' },
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
    // Revocation within seconds on njs >= 0.8 (issue 9): a session ended at the auth service whose
    // token is still valid.
    {
      name: 'sends a browser with a valid token of a revoked session (sid in the revocation dict) to the login page',
      cookie: 'gw_session=' + token,
      accept: BROWSER_ACCEPT,
      requestUri: '/reports?q=1',
      revoked: ['0123456789abcdefghijAB', claims.sid],
      expect: { action: 'login', reason: 'session-revoked', location: '/login?rd=%2Freports%3Fq%3D1' },
    },
    {
      name: 'denies an API client a valid token of a revoked session (401, not a renewal)',
      cookie: 'gw_session=' + token,
      accept: 'application/json',
      requestUri: '/api/things',
      revoked: [claims.sid],
      expect: { action: 'deny', reason: 'session-revoked' },
    },
    {
      name: 'allows a valid session whose sid is not in the revocation dict',
      cookie: 'gw_session=' + token,
      accept: 'application/json',
      requestUri: '/',
      revoked: ['0123456789abcdefghijAB'],
      expect: { action: 'allow', headers: allHeaders, upstreamCookie: '' },
    },
    {
      name: 'renews an expired token of a revoked session as any other (the auth service then refuses it)',
      cookie: 'gw_session=' + expired,
      accept: 'application/json',
      requestUri: '/',
      revoked: [claims.sid],
      expect: { action: 'renew', reason: 'token-expired', location: '' },
    },
    {
      name: 'never looks a forged token up in the revocation dict: it is refused as forged',
      cookie: 'gw_session=' + forged,
      accept: 'application/json',
      requestUri: '/',
      revoked: [claims.sid],
      expect: { action: 'deny', reason: 'token-invalid' },
    },
  ];
}
