import { describe, expect, it } from '@jest/globals';
import { decisionCases } from '../../test/cases/decision-cases.js';
import { CLIENT_IP, NOW, decodeBase64url, hmacBase64url, makeConfig, sha256Hex } from '../../test/cases/fixtures.js';
import { claimHeaderValue, decideRequest } from './decide.js';

const POLICY_OFF_FIXTURE = { version: 1, off: true as const };

describe('decideRequest', () => {
  it.each(decisionCases(NOW).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const decision = decideRequest({
      cookieHeaders: c.cookie,
      accept: c.accept,
      requestUri: c.requestUri,
      uri: c.requestUri.split('?')[0],
      method: 'GET',
      policy: POLICY_OFF_FIXTURE,
      remoteAddr: c.remoteAddr === undefined ? CLIENT_IP : c.remoteAddr,
      now: NOW,
      config: makeConfig(),
      hmac: hmacBase64url,
      digest: sha256Hex,
      decode: decodeBase64url,
    });
    expect(decision.action).toBe(c.expect.action);
    if (decision.action === 'allow') {
      expect(decision.headers).toEqual(c.expect.headers);
      expect(decision.upstreamCookie).toBe(c.expect.upstreamCookie);
    } else {
      expect(decision.reason).toBe(c.expect.reason);
    }
    if (decision.action === 'login') expect(decision.location).toBe(c.expect.location);
  });

  it('uses the configured cookie name and login path', () => {
    const config = makeConfig({ cookieName: '__Host-gw', loginPath: '/auth/login' });
    const decision = decideRequest({
      cookieHeaders: 'gw_session=x',
      accept: 'text/html',
      requestUri: '/x',
      uri: '/x',
      method: 'GET',
      policy: POLICY_OFF_FIXTURE,
      remoteAddr: CLIENT_IP,
      now: NOW,
      config: config,
      hmac: hmacBase64url,
      digest: sha256Hex,
      decode: decodeBase64url,
    });
    expect(decision).toEqual({ action: 'login', reason: 'token-missing', location: '/auth/login?rd=%2Fx', rule: '' });
  });
});

describe('claimHeaderValue', () => {
  const cases: Array<[string, unknown, string | undefined]> = [
    ['keeps a plain string', 'alice', 'alice'],
    ['removes CR and LF (header injection)', 'a\r\nX-Evil: 1', 'aX-Evil: 1'],
    ['removes every C0 control and DEL', 'a\u0000\u0001\u001f\u007fb', 'ab'],
    ['keeps non-ASCII text', 'Zoë', 'Zoë'],
    ['comma-joins arrays', ['a', 'b'], 'a,b'],
    ['drops non-scalar array items', ['a', { x: 1 }, null, 2], 'a,2'],
    ['stringifies numbers', 42, '42'],
    ['stringifies booleans', false, 'false'],
    ['skips objects', { a: 1 }, undefined],
    ['skips null', null, undefined],
  ];
  it.each(cases)('%s', (_name, value, expected) => {
    expect(claimHeaderValue(value)).toBe(expected);
  });
});
