/**
 * Session token cases, shared by jest (verifySessionToken directly) and the njs runner (through
 * the shipped gate.check). njs 0.7.9 subset.
 */
import type { DenyReason } from '../../src/core/session-contract.js';
import {
  CLIENT_IP,
  CURRENT_KEY,
  LEEWAY,
  PREVIOUS_KEY,
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
  /** GateConfig.ipBinding; true unless set. */
  ipBinding?: boolean;
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

  return [
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
      ipBinding: false,
      expect: 'ok',
    },
    {
      name: 'accepts a token without ip when IP binding is off',
      token: signToken(withClaims(claims, { ip: undefined })),
      ipBinding: false,
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
}
