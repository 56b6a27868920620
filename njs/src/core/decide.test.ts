import { describe, expect, it } from '@jest/globals';
import { decisionCases } from '../../test/cases/decision-cases.js';
import { CLIENT_IP, NOW, decodeBase64url, hmacBase64url, makeConfig, sha256Hex, signToken, validClaims } from '../../test/cases/fixtures.js';
import { asPreloaded, policyCaseCookie, policyCases, policyFixture } from '../../test/cases/policy-cases.js';
import type { PolicyCase } from '../../test/cases/policy-cases.js';
import { claimHeaderValue, decideRequest, decideRevocable, encodeListItem } from './decide.js';
import type { Decision } from './decide.js';
import type { GatePolicy } from './policy-contract.js';

const POLICY_OFF_FIXTURE = { version: 1, off: true as const };

describe('decideRequest', () => {
  it.each(decisionCases(NOW).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const input = {
      cookieHeaders: c.cookie,
      accept: c.accept,
      requestUri: c.requestUri,
      uri: c.requestUri.split('?')[0]!,
      method: 'GET',
      policy: POLICY_OFF_FIXTURE,
      remoteAddr: c.remoteAddr === undefined ? CLIENT_IP : c.remoteAddr,
      now: NOW,
      config: makeConfig(),
      hmac: hmacBase64url,
      digest: sha256Hex,
      decode: decodeBase64url,
    };
    // Without a dict (njs 0.7.9) the plain decision; with one, as the njs >= 0.8 gate decides.
    const decision =
      c.revoked === undefined
        ? decideRequest(input)
        : decideRevocable((cookies) => decideRequest({ ...input, cookieHeaders: cookies }), c.cookie, 'gw_session', { has: (sid: string) => c.revoked!.includes(sid) });
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

describe('decideRevocable (njs >= 0.8: the revocation dict)', () => {
  const claims = validClaims(NOW);
  const cookie = 'theme=dark; gw_session=' + signToken(claims);
  const revoked = { has: (sid: string) => sid === claims.sid };
  function decideOn(path: string, accept: string) {
    return decideRevocable(
      (cookies) =>
        decideRequest({
          cookieHeaders: cookies,
          accept,
          requestUri: path,
          uri: path,
          method: 'GET',
          policy: policyFixture(),
          remoteAddr: CLIENT_IP,
          now: NOW,
          config: makeConfig(),
          hmac: hmacBase64url,
          digest: sha256Hex,
          decode: decodeBase64url,
        }),
      cookie,
      'gw_session',
      revoked,
    );
  }

  it('lets a revoked session through a public path as an anonymous request: no identity, no session cookie upstream', () => {
    expect(decideOn('/static/app.css', 'text/css')).toEqual({
      action: 'allow',
      claims: null,
      reason: 'public',
      headers: {},
      upstreamCookie: 'theme=dark',
      rule: 'static',
      sessionProblem: 'session-revoked',
    });
  });

  it('refuses a revoked session on a path that needs one, with the login page for a browser, also where the policy would have refused the user (no 403 naming them)', () => {
    expect(decideOn('/federation/x', 'text/html')).toEqual({ action: 'login', reason: 'session-revoked', location: '/login?rd=%2Ffederation%2Fx', rule: '' });
    expect(decideOn('/federation/x', 'application/json')).toEqual({ action: 'deny', reason: 'session-revoked', rule: '' });
  });

  it('answers a public deny rule with 403 as for anyone', () => {
    expect(decideOn('/static/private/x', 'text/html')).toMatchObject({ action: 'forbidden', reason: 'policy-denied', rule: 'static-private', claims: null });
  });
});

describe('encodeListItem', () => {
  it('is undone exactly by decodeURIComponent, for every BMP code unit class and astral characters', () => {
    let all = '';
    for (let c = 0; c < 0x800; c++) all += String.fromCharCode(c);
    all += '\uffef\ud83d\ude80%,';
    const encoded = encodeListItem(all);
    expect(encoded).not.toMatch(/[^A-Za-z0-9 ;/?:@&=+$_.!~*'()#%-]|%(?![0-9A-F]{2})/);
    expect(decodeURIComponent(encoded)).toBe(all);
  });
  it('encodes a name the same whether or not another name in the list holds a comma', () => {
    const names = ['Zoë "Ops" <EU>', '100% {x}|y', 'plain name'];
    const alone = claimHeaderValue(names)!;
    const withComma = claimHeaderValue(names.concat(['a,b']))!;
    expect(withComma).toBe(alone + ',a%2Cb');
    expect(alone.split(',').map(decodeURIComponent)).toEqual(names);
  });
  it('turns a lone surrogate into U+FFFD instead of throwing', () => {
    expect(encodeListItem('a\ud800b')).toBe('a%EF%BF%BDb');
  });
});

describe('claimHeaderValue', () => {
  const cases: Array<[string, unknown, string | undefined]> = [
    ['keeps a plain string', 'alice', 'alice'],
    ['removes CR and LF (header injection)', 'a\r\nX-Evil: 1', 'aX-Evil: 1'],
    ['removes every C0 control and DEL', 'a\u0000\u0001\u001f\u007fb', 'ab'],
    ['keeps non-ASCII text', 'Zoë', 'Zoë'],
    ['comma-joins arrays', ['a', 'b'], 'a,b'],
    ['percent-encodes a comma inside an array item', ['a,b', 'c'], 'a%2Cb,c'],
    ['percent-encodes control characters in array items instead of dropping them', ['a\nb'], 'a%0Ab'],
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

describe('decideRequest with an access policy', () => {
  function decide(c: PolicyCase, policy: GatePolicy): Decision {
    return decideRequest({
      cookieHeaders: policyCaseCookie(c),
      accept: c.accept,
      requestUri: c.requestUri,
      uri: c.uri,
      method: c.method,
      policy: policy,
      app: c.app,
      remoteAddr: c.remoteAddr === undefined ? CLIENT_IP : c.remoteAddr,
      now: NOW,
      config: makeConfig(),
      hmac: hmacBase64url,
      digest: sha256Hex,
      decode: decodeBase64url,
    });
  }

  function expectMatches(decision: Decision, c: PolicyCase): void {
    const e = c.expect;
    expect([decision.action, decision.reason, decision.rule]).toEqual([e.action, e.reason, e.rule]);
    if (decision.action === 'allow') {
      expect(decision.claims === null ? undefined : decision.claims.username).toBe(e.user);
      // A public pass for an anonymous request carries no identity at all.
      if (e.user === undefined) expect(decision.headers).toEqual({});
      else expect(decision.headers.username).toBe(e.user);
      expect(decision.upstreamCookie).toBe(e.upstreamCookie === undefined ? '' : e.upstreamCookie);
    }
    if (decision.action === 'forbidden') expect(decision.claims === null ? undefined : decision.claims.username).toBe(e.user);
    if (decision.action === 'login') expect(decision.location).toBe(e.location);
  }

  const cases = policyCases(NOW).map((c) => [c.name, c] as const);

  it.each(cases)('%s', (_name, c) => {
    expectMatches(decide(c, policyFixture()), c);
  });

  // nginx preloads the policy frozen and without prototypes: no method may be called on its parts.
  it.each(cases)('%s (policy as nginx preloads it)', (_name, c) => {
    expectMatches(decide(c, asPreloaded(policyFixture())), c);
  });

  it('makes the preloaded fixture really prototype-less and frozen', () => {
    const p = asPreloaded(policyFixture());
    expect(Object.getPrototypeOf(p.prefix['/federation'])).toBeNull();
    expect(Object.getPrototypeOf(p.rules[0].methods)).toBeNull();
    expect(Object.isFrozen(p.zones['Test/Zone'].starts)).toBe(true);
    expect(() => (p.regex as unknown as { indexOf(x: number): number }).indexOf(0)).toThrow(TypeError);
  });

  it('refuses a named app when no policy is configured (app-unknown, not a silent allow)', () => {
    const c: PolicyCase = {
      name: 'policy off, app finance',
      method: 'GET',
      uri: '/reports',
      requestUri: '/reports',
      claims: validClaims(NOW),
      accept: 'application/json',
      app: 'finance',
      expect: { action: 'forbidden', reason: 'app-unknown', rule: '' },
    };
    expectMatches(decide(c, POLICY_OFF_FIXTURE), c);
  });

  it('skips the path checks when no policy is configured (an ambiguous path is the upstream\'s business)', () => {
    const c: PolicyCase = {
      name: 'policy off',
      method: 'GET',
      uri: '/static/..;/federation',
      requestUri: '/static/..;/federation',
      claims: validClaims(NOW),
      accept: 'application/json',
      expect: { action: 'allow', reason: 'session-valid', rule: '', user: 'alice' },
    };
    expectMatches(decide(c, POLICY_OFF_FIXTURE), c);
  });

  it('refuses an ambiguous path with 400 even for a valid session', () => {
    const decision = decideRequest({
      cookieHeaders: 'gw_session=' + signToken(validClaims(NOW)),
      accept: 'text/html',
      requestUri: '/a%5cb',
      uri: '/a\\b',
      method: 'GET',
      policy: policyFixture(),
      remoteAddr: CLIENT_IP,
      now: NOW,
      config: makeConfig(),
      hmac: hmacBase64url,
      digest: sha256Hex,
      decode: decodeBase64url,
    });
    expect(decision).toEqual({ action: 'bad-request', reason: 'path-ambiguous', rule: '' });
  });
});
