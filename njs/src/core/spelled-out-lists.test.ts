/**
 * The gate spells some lists out as code instead of looping over module-level arrays (njs builds
 * each such array again for every request). These tests keep the code and the arrays in step.
 */
import { describe, expect, it } from '@jest/globals';
import { forwardedHeaders } from './decide.js';
import { FORWARDED_CLAIMS, MUTABLE_USERNAME_SOURCES, isJsonArray, isMutableUsernameSource } from './session-contract.js';
import type { SessionClaims } from './session-contract.js';
import { isPreloadedList } from './gate-config.js';

describe('lists the gate spells out', () => {
  it('forwardedHeaders forwards exactly FORWARDED_CLAIMS, in their order', () => {
    const claims: { [name: string]: unknown } = { ip: '127.0.0.1', iat: 1, exp: 2, tta: 'sealed', other: 'x' };
    for (const name of FORWARDED_CLAIMS) claims[name] = 'value-of-' + name;
    const headers = forwardedHeaders(claims as unknown as SessionClaims, false);
    expect(Object.keys(headers)).toEqual(FORWARDED_CLAIMS);
    for (const name of FORWARDED_CLAIMS) expect(headers[name]).toBe('value-of-' + name);
  });

  it('forwardedHeaders leaves absent and non-scalar claims out', () => {
    const headers = forwardedHeaders({ sub: 's', username: 'kirk', name: { nested: true }, email: null } as unknown as SessionClaims, false);
    expect(headers).toEqual({ sub: 's', username: 'kirk' });
  });

  it('isMutableUsernameSource answers as MUTABLE_USERNAME_SOURCES does', () => {
    for (const src of MUTABLE_USERNAME_SOURCES) expect(isMutableUsernameSource(src)).toBe(true);
    for (const src of ['local', 'tableau', 'custom', 'custom:ldap', 'OIDC', '', 'oidc ', undefined, null]) {
      expect(isMutableUsernameSource(src)).toBe(false);
    }
  });

  it('isJsonArray tells JSON arrays from every other JSON value', () => {
    expect(isJsonArray(JSON.parse('[]'))).toBe(true);
    expect(isJsonArray(JSON.parse('["a"]'))).toBe(true);
    for (const text of ['{}', '{"join":"x"}', '{"length":1,"0":"a"}', '"join"', '1', 'null', 'true']) {
      expect(isJsonArray(JSON.parse(text))).toBe(false);
    }
  });

  it('isPreloadedList accepts arrays and refuses plain objects and scalars', () => {
    expect(isPreloadedList([])).toBe(true);
    expect(isPreloadedList(['a'])).toBe(true);
    for (const v of [{}, { a: 1 }, null, 'abc', 3, undefined]) expect(isPreloadedList(v)).toBe(false);
  });
});
