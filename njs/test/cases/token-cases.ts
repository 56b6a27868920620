/**
 * Session token cases, shared by jest (verifySessionToken directly) and the njs runner (through
 * the shipped gate.check). njs 0.7.9 subset.
 */
import type { DenyReason, IpBinding } from '../../src/core/session-contract.js';
import {
  CLIENT_IP,
  CURRENT_KEY,
  DROPPED_KEY,
  LEEWAY,
  MAX_SESSION,
  PREVIOUS_KEY,
  RETIRED_KEY,
  UNKNOWN_KEY,
  base64url,
  hmacBase64url,
  headerSegment,
  signRaw,
  signToken,
  validClaims,
  withClaims,
} from './fixtures.js';

export interface TokenCase {
  /** What is covered: the attack or edge, as a behaviour. */
  name: string;
  token: string;
  /** $remote_addr; CLIENT_IP unless set. */
  remoteAddr?: string;
  /** GateConfig.ipBinding; 'exact' unless set. */
  ipBinding?: IpBinding;
  /** 'ok' or the deny reason expected. */
  expect: 'ok' | DenyReason;
}

/** Replaces the last character of `s` with `c`. */
function withLastChar(s: string, c: string): string {
  return s.slice(0, s.length - 1) + c;
}

/** The base64url character with the same top 4 bits but other low bits: decodes to the same bytes. */
function flipLowBits(c: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const i = alphabet.indexOf(c);
  return alphabet.charAt(i - (i % 4) + ((i % 4) + 1) % 4);
}

/** Header segment spelled `json`, signed with the current key's secret. */
function signWithHeader(headerJson: string, claims: unknown): string {
  return signRaw(base64url(headerJson), JSON.stringify(claims), CURRENT_KEY.secret);
}

/** A payload segment signed correctly under the current key, whatever its spelling. */
function signPayloadSegment(payload: string): string {
  const header = headerSegment(CURRENT_KEY.kid);
  return header + '.' + payload + '.' + hmacBase64url(CURRENT_KEY.secret, header + '.' + payload);
}

/** Cases for a clock frozen at `now` (seconds) with leeway LEEWAY. */
export function tokenCases(now: number): TokenCase[] {
  const claims = validClaims(now);
  const good = signToken(claims);
  const goodParts = good.split('.');
  const currentHeader = headerSegment(CURRENT_KEY.kid);
  const sig = goodParts[2];
  let paddedTo1 = base64url(JSON.stringify(claims));
  while (paddedTo1.length % 4 !== 1) paddedTo1 += 'A';

  const base: TokenCase[] = [
    { name: 'accepts a token signed with the current key', token: good, expect: 'ok' },
    { name: 'accepts a token signed with the previous key (key rotation)', token: signToken(claims, PREVIOUS_KEY), expect: 'ok' },
    { name: 'rejects a token signed with a key the gate does not know', token: signToken(claims, UNKNOWN_KEY), expect: 'token-invalid' },
    {
      name: 'rejects a token with a known kid but signed with another secret',
      token: signRaw(currentHeader, JSON.stringify(claims), UNKNOWN_KEY.secret),
      expect: 'token-invalid',
    },
    {
      name: 'rejects alg none with an empty signature',
      token: base64url('{"alg":"none","typ":"JWT"}') + '.' + goodParts[1] + '.',
      expect: 'token-invalid',
    },
    {
      name: 'rejects alg none carrying the current kid',
      token: base64url('{"alg":"none","typ":"JWT","kid":"k2"}') + '.' + goodParts[1] + '.',
      expect: 'token-invalid',
    },
    {
      name: 'rejects an RS256 header HMAC-signed with the secret (algorithm confusion)',
      token: signWithHeader('{"alg":"RS256","typ":"JWT","kid":"k2"}', claims),
      expect: 'token-invalid',
    },
    {
      name: 'rejects a header with an extra field (jku) even when correctly signed',
      token: signWithHeader('{"alg":"HS256","typ":"JWT","kid":"k2","jku":"https://evil.test/jwks"}', claims),
      expect: 'token-invalid',
    },
    {
      name: 'rejects a header with the right fields in another order',
      token: signWithHeader('{"typ":"JWT","alg":"HS256","kid":"k2"}', claims),
      expect: 'token-invalid',
    },
    {
      name: "rejects a header segment with '=' padding",
      token: signRaw(currentHeader + '=', JSON.stringify(claims), CURRENT_KEY.secret),
      expect: 'token-invalid',
    },
    {
      name: 'rejects a header segment naming an Object.prototype member (__proto__)',
      token: '__proto__.' + goodParts[1] + '.' + sig,
      expect: 'token-invalid',
    },
    { name: 'rejects a header segment "constructor"', token: 'constructor.' + goodParts[1] + '.' + sig, expect: 'token-invalid' },
    {
      name: 'rejects a signature whose unused low bits are flipped (decodes to the same MAC)',
      token: withLastChar(good, flipLowBits(sig.charAt(42))),
      expect: 'token-invalid',
    },
    { name: "rejects a signature with '=' padding", token: good + '=', expect: 'token-invalid' },
    { name: 'rejects a truncated signature (42 chars)', token: good.slice(0, good.length - 1), expect: 'token-invalid' },
    {
      name: 'rejects a signature with a space inside',
      token: goodParts[0] + '.' + goodParts[1] + '.' + sig.slice(0, 20) + ' ' + sig.slice(21),
      expect: 'token-invalid',
    },
    {
      name: "rejects a signature in standard base64 ('+' and '/')",
      token: goodParts[0] + '.' + goodParts[1] + '.' + '+/' + sig.slice(2),
      expect: 'token-invalid',
    },
    {
      name: 'rejects a wrong MAC of the right shape',
      token: goodParts[0] + '.' + goodParts[1] + '.' + (sig.charAt(0) === 'A' ? 'B' : 'A') + sig.slice(1),
      expect: 'token-invalid',
    },
    {
      name: "rejects a correctly signed payload containing '!' (Buffer would skip it)",
      token: signPayloadSegment(goodParts[1].slice(0, 10) + '!' + goodParts[1].slice(10)),
      expect: 'token-invalid',
    },
    {
      name: "rejects a correctly signed payload with '=' padding",
      token: signPayloadSegment(goodParts[1] + '=='),
      expect: 'token-invalid',
    },
    {
      name: 'rejects a correctly signed payload whose length % 4 is 1',
      token: signPayloadSegment(paddedTo1),
      expect: 'token-invalid',
    },
    { name: 'rejects an empty payload segment', token: signPayloadSegment(''), expect: 'token-invalid' },
    { name: 'rejects a token with 2 segments', token: goodParts[0] + '.' + goodParts[1], expect: 'token-invalid' },
    { name: 'rejects a token with 4 segments', token: good + '.' + sig, expect: 'token-invalid' },
    { name: 'rejects a token with 1 segment', token: goodParts[1], expect: 'token-invalid' },
    { name: 'rejects a JWE-like token with 5 segments', token: good + '.x.y', expect: 'token-invalid' },
    {
      name: 'accepts a token expired by less than the leeway',
      token: signToken(withClaims(claims, { exp: now - LEEWAY + 1 })),
      expect: 'ok',
    },
    {
      name: 'accepts a token exactly at exp + leeway',
      token: signToken(withClaims(claims, { exp: now - LEEWAY })),
      expect: 'ok',
    },
    {
      name: 'rejects a token expired by more than the leeway',
      token: signToken(withClaims(claims, { exp: now - LEEWAY - 1 })),
      expect: 'token-expired',
    },
    { name: 'rejects a token expired long ago', token: signToken(withClaims(claims, { exp: 1000 })), expect: 'token-expired' },
    {
      name: 'rejects a token not valid before a time beyond the leeway',
      token: signToken(withClaims(claims, { nbf: now + LEEWAY + 1 })),
      expect: 'token-not-yet-valid',
    },
    {
      name: 'accepts a token whose nbf is within the leeway',
      token: signToken(withClaims(claims, { nbf: now + LEEWAY })),
      expect: 'ok',
    },
    { name: 'accepts a token whose nbf is in the past', token: signToken(withClaims(claims, { nbf: now - 60 })), expect: 'ok' },
    { name: 'rejects nbf as a string', token: signToken(withClaims(claims, { nbf: String(now) })), expect: 'token-malformed' },
    { name: 'rejects a token without exp', token: signToken(withClaims(claims, { exp: undefined })), expect: 'token-malformed' },
    {
      name: 'rejects exp as a string',
      token: signToken(withClaims(claims, { exp: String(now + 3600) })),
      expect: 'token-malformed',
    },
    { name: 'rejects exp null', token: signToken(withClaims(claims, { exp: null })), expect: 'token-malformed' },
    {
      name: 'rejects exp that JSON-parses to Infinity (1e400)',
      token: signRaw(currentHeader, '{"sub":"u","username":"alice","ip":"' + CLIENT_IP + '","exp":1e400}', CURRENT_KEY.secret),
      expect: 'token-malformed',
    },
    { name: 'rejects a token bound to another IP', token: good, remoteAddr: '198.51.100.9', expect: 'ip-mismatch' },
    {
      name: 'rejects a token without ip while IP binding is on',
      token: signToken(withClaims(claims, { ip: undefined })),
      expect: 'ip-mismatch',
    },
    { name: 'rejects an ip claim that is not a string', token: signToken(withClaims(claims, { ip: 1 })), expect: 'ip-mismatch' },
    {
      name: 'accepts a token bound to another IP when IP binding is off',
      token: good,
      remoteAddr: '198.51.100.9',
      ipBinding: 'off',
      expect: 'ok',
    },
    {
      name: 'accepts a token without ip when IP binding is off',
      token: signToken(withClaims(claims, { ip: undefined })),
      ipBinding: 'off',
      expect: 'ok',
    },
    { name: 'rejects a signed payload that is a JSON array', token: signRaw(currentHeader, '[1,2]', CURRENT_KEY.secret), expect: 'token-malformed' },
    { name: 'rejects a signed payload that is a JSON string', token: signRaw(currentHeader, '"alice"', CURRENT_KEY.secret), expect: 'token-malformed' },
    { name: 'rejects a signed payload that is JSON null', token: signRaw(currentHeader, 'null', CURRENT_KEY.secret), expect: 'token-malformed' },
    { name: 'rejects a signed payload that is not JSON', token: signRaw(currentHeader, 'not json', CURRENT_KEY.secret), expect: 'token-malformed' },
    { name: 'rejects a token without sub', token: signToken(withClaims(claims, { sub: undefined })), expect: 'token-malformed' },
    { name: 'rejects an empty sub', token: signToken(withClaims(claims, { sub: '' })), expect: 'token-malformed' },
    { name: 'rejects a numeric sub', token: signToken(withClaims(claims, { sub: 42 })), expect: 'token-malformed' },
    { name: 'rejects a token without username', token: signToken(withClaims(claims, { username: undefined })), expect: 'token-malformed' },
    { name: 'rejects groups given as a string', token: signToken(withClaims(claims, { groups: 'admin' })), expect: 'token-malformed' },
    { name: 'rejects groups holding a non-string', token: signToken(withClaims(claims, { groups: ['staff', 1] })), expect: 'token-malformed' },
    { name: 'accepts a token without groups', token: signToken(withClaims(claims, { groups: undefined })), expect: 'ok' },
  ];
  return base.concat(keyRetirementCases(now), sessionAgeCases(now), ipBindingCases(now));
}

/** Previous keys with a grace period (GateConfig.keyRetiredAt; fixtures: PREVIOUS_KEY retires at NOW + 1). */
function keyRetirementCases(now: number): TokenCase[] {
  const claims = validClaims(now);
  return [
    { name: 'accepts a previous key one second before its retirement time', token: signToken(claims, PREVIOUS_KEY), expect: 'ok' },
    { name: 'refuses a previous key exactly at its retirement time', token: signToken(claims, RETIRED_KEY), expect: 'token-key-retired' },
    {
      name: 'refuses a retired key even for a token minted just now with a far-future exp',
      token: signToken(withClaims(claims, { iat: now, exp: now + 10 * 365 * 86400 }), RETIRED_KEY),
      expect: 'token-key-retired',
    },
    {
      name: 'refuses a token naming a retired key whose secret the gate no longer holds',
      token: signToken(claims, DROPPED_KEY),
      expect: 'token-key-retired',
    },
    {
      name: 'a forged MAC under a retired key is invalid, not retired (MAC first)',
      token: signRaw(headerSegment(RETIRED_KEY.kid), JSON.stringify(claims), UNKNOWN_KEY.secret),
      expect: 'token-invalid',
    },
    { name: 'the current key never retires', token: signToken(withClaims(claims, { iat: now })), expect: 'ok' },
  ];
}

/** `iat` and the maximum session age (GateConfig.maxSessionSeconds = MAX_SESSION, leeway LEEWAY). */
function sessionAgeCases(now: number): TokenCase[] {
  const claims = validClaims(now);
  return [
    { name: 'rejects a token without iat', token: signToken(withClaims(claims, { iat: undefined })), expect: 'token-malformed' },
    { name: 'rejects iat as a string', token: signToken(withClaims(claims, { iat: String(now) })), expect: 'token-malformed' },
    { name: 'rejects iat null', token: signToken(withClaims(claims, { iat: null })), expect: 'token-malformed' },
    { name: 'rejects a fractional iat', token: signToken(withClaims(claims, { iat: now - 0.5 })), expect: 'token-malformed' },
    {
      name: 'rejects iat that JSON-parses to -Infinity (-1e400)',
      token: signRaw(headerSegment(CURRENT_KEY.kid), '{"sub":"u","username":"alice","ip":"' + CLIENT_IP + '","iat":-1e400,"exp":' + (now + 60) + '}', CURRENT_KEY.secret),
      expect: 'token-malformed',
    },
    { name: 'accepts iat in the future within the leeway (clock skew)', token: signToken(withClaims(claims, { iat: now + LEEWAY })), expect: 'ok' },
    {
      name: 'rejects iat in the future beyond the leeway',
      token: signToken(withClaims(claims, { iat: now + LEEWAY + 1, exp: now + 3600 })),
      expect: 'token-not-yet-valid',
    },
    {
      name: 'accepts a session exactly at the maximum age plus the leeway',
      token: signToken(withClaims(claims, { iat: now - MAX_SESSION - LEEWAY })),
      expect: 'ok',
    },
    {
      name: 'rejects a session one second past the maximum age plus the leeway, though exp is ahead',
      token: signToken(withClaims(claims, { iat: now - MAX_SESSION - LEEWAY - 1 })),
      expect: 'token-too-old',
    },
    {
      name: 'rejects a token minted with a far-future exp once its iat is older than the maximum (stolen key)',
      token: signToken(withClaims(claims, { iat: now - 30 * 86400, exp: now + 365 * 86400 }), PREVIOUS_KEY),
      expect: 'token-too-old',
    },
    {
      name: 'an ordinary end of session (expired and past the maximum age) reports session-max-age, not token-too-old',
      token: signToken(withClaims(claims, { iat: now - MAX_SESSION - LEEWAY - 1, exp: now - LEEWAY - 1 })),
      expect: 'session-max-age',
    },
  ];
}

/** SESSION_IP_BINDING modes, IPv4 /24 and IPv6 /64 boundaries. */
function ipBindingCases(now: number): TokenCase[] {
  const claims = validClaims(now);
  const boundTo = function (ip: unknown): string {
    return signToken(withClaims(claims, { ip: ip }));
  };
  const cases: TokenCase[] = [
    { name: 'exact: refuses another address in the same /24', token: boundTo('203.0.113.7'), remoteAddr: '203.0.113.8', expect: 'ip-mismatch' },
    { name: 'subnet: accepts the same address', token: boundTo('203.0.113.7'), remoteAddr: '203.0.113.7', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: accepts another address in the same IPv4 /24 (.0)', token: boundTo('203.0.113.7'), remoteAddr: '203.0.113.0', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: accepts another address in the same IPv4 /24 (.255)', token: boundTo('203.0.113.7'), remoteAddr: '203.0.113.255', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: refuses the next IPv4 /24', token: boundTo('203.0.113.7'), remoteAddr: '203.0.114.7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses a /24 whose text is a prefix (203.0.11.x)', token: boundTo('203.0.113.7'), remoteAddr: '203.0.11.37', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses 1.2.3.x against 11.2.3.x', token: boundTo('1.2.3.4'), remoteAddr: '11.2.3.4', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: accepts another address in the same IPv6 /64', token: boundTo('2001:db8:1:2::7'), remoteAddr: '2001:db8:1:2:ffff:ffff:ffff:ffff', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: compares IPv6 by value, not spelling', token: boundTo('2001:0db8:0:0::1'), remoteAddr: '2001:db8::9', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: accepts upper-case IPv6 hex', token: boundTo('2001:DB8:1:2::1'), remoteAddr: '2001:db8:1:2::2', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: refuses the next IPv6 /64', token: boundTo('2001:db8:1:2::7'), remoteAddr: '2001:db8:1:3::7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses a change in the first group', token: boundTo('2001:db8:1:2::7'), remoteAddr: '2002:db8:1:2::7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses IPv4 against IPv6 (dual stack is not a subnet)', token: boundTo('203.0.113.7'), remoteAddr: '2001:db8::7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses an IPv4-mapped address against plain IPv4', token: boundTo('::ffff:203.0.113.7'), remoteAddr: '203.0.113.7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: accepts IPv4-mapped addresses in the same /24', token: boundTo('::ffff:203.0.113.7'), remoteAddr: '::ffff:203.0.113.9', ipBinding: 'subnet', expect: 'ok' },
    { name: 'subnet: refuses IPv4-mapped addresses in other /24s (not one /64)', token: boundTo('::ffff:203.0.113.7'), remoteAddr: '::ffff:198.51.100.7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses a malformed IPv6 claim', token: boundTo('2001:db8:::1'), remoteAddr: '2001:db8::1', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses an IPv6 claim with too many groups', token: boundTo('2001:db8:1:2:3:4:5:6:7'), remoteAddr: '2001:db8:1:2::1', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses an empty ip claim', token: boundTo(''), remoteAddr: '203.0.113.7', ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses a token without ip', token: boundTo(undefined), ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'subnet: refuses an ip claim that is not a string', token: boundTo(203), ipBinding: 'subnet', expect: 'ip-mismatch' },
    { name: 'off: accepts an IPv6 client on an IPv4-bound token', token: boundTo('203.0.113.7'), remoteAddr: '2001:db8::7', ipBinding: 'off', expect: 'ok' },
  ];
  return cases;
}
