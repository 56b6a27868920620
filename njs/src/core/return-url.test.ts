import fs from 'fs';
import { describe, expect, it } from '@jest/globals';
import { loginLocationCases, openRedirectCases, returnPathCases, returnTargetCases, returnTargetOrigins } from '../../test/cases/return-url-cases.js';
import { loginRedirectLocation, safeReturnPath, safeReturnTarget, splitReturnTarget } from './return-url.js';

// Located from the test file's own path (expect.getState), not the cwd. This file is also type-checked
// by njs/tsconfig.json (njs-types only), hence 'fs' and no import.meta / URL.
const testPath = String(expect.getState().testPath);
const repoRoot = testPath.slice(0, testPath.lastIndexOf('/njs/src/'));
const openRedirectList = fs.readFileSync(repoRoot + '/njs/test/fixtures/oauth2-proxy-openredirects.txt', 'utf8');

describe('safeReturnPath', () => {
  it.each(returnPathCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(safeReturnPath(c.rd)).toBe(c.expect);
  });
});

describe('safeReturnPath against the oauth2-proxy open-redirect list', () => {
  const cases = openRedirectCases(openRedirectList);
  it('reads every line of the list', () => {
    expect(cases.length).toBeGreaterThanOrEqual(559);
  });
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(safeReturnPath(c.rd)).toBe('/');
  });
});

describe('loginRedirectLocation', () => {
  it.each(loginLocationCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(loginRedirectLocation(c.loginPath, c.requestUri)).toBe(c.expect);
  });

  it('falls back to the bare login path when the URI cannot be encoded (lone surrogate)', () => {
    expect(loginRedirectLocation('/login', '/a\uD800')).toBe('/login');
  });

  it('round-trips: the decoded rd of a normal request URI is kept by safeReturnPath', () => {
    const uri = '/reports/2024?range=last%20week&sort=desc';
    const location = loginRedirectLocation('/login', uri);
    const rd = decodeURIComponent(location.slice(location.indexOf('?rd=') + 4));
    expect(safeReturnPath(rd)).toBe(uri);
  });
});

describe('safeReturnTarget (APP_ORIGINS)', () => {
  it.each(returnTargetCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(safeReturnTarget(c.rd, returnTargetOrigins)).toBe(c.expect);
  });
  it('is safeReturnPath with no origins listed', () => {
    expect(safeReturnTarget('https://app.example.com/', [])).toBe('/');
  });
  it('splits a target into origin and path', () => {
    expect(splitReturnTarget('https://app.example.com/r?x=1')).toEqual({ origin: 'https://app.example.com', path: '/r?x=1' });
    expect(splitReturnTarget('/r')).toEqual({ origin: null, path: '/r' });
  });
});

describe('safeReturnTarget against the oauth2-proxy open-redirect list', () => {
  const cases = openRedirectCases(openRedirectList);
  // Listed origins as an operator would write them; every line of the list must still go to '/'.
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(safeReturnTarget(c.rd, returnTargetOrigins)).toBe('/');
  });
});
