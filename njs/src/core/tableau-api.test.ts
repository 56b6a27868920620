import { describe, expect, test } from '@jest/globals';
import type { TableauGateConfig } from './session-contract.js';
import { crossSiteProblem, escapePath, isSealedShape, readTableauCredentials, tableauKeyFor, tableauUpstreamUrl } from './tableau-api.js';

const NOW = 1_800_000_000;
const KEY = 'A'.repeat(43);
const tableau: TableauGateConfig = { origin: 'https://tableau.example.com', host: 'tableau.example.com', keys: { hdr: KEY, bad: 'not base64url!' } };

describe('tableauKeyFor', () => {
  test.each([
    ['the key of the header segment the session was signed under', 'hdr.payload.sig', KEY],
    ['no key for an unknown header segment', 'other.payload.sig', null],
    ['no key for a name on Object.prototype', 'constructor.payload.sig', null],
    ['no key when the configured one is not base64url', 'bad.payload.sig', null],
  ])('gives %s', (_name, token, expected) => {
    expect(tableauKeyFor(tableau, token)).toBe(expected);
  });
});

describe('isSealedShape', () => {
  test.each([
    ['IV + tag + some ciphertext', 'A'.repeat(60), true],
    ['only IV + tag (no ciphertext)', 'A'.repeat(38), false],
    ['padding', 'A'.repeat(60) + '==', false],
    ['a non-string', 12, false],
    ['an empty string', '', false],
  ])('%s: %s', (_name, value, expected) => {
    expect(isSealedShape(value)).toBe(expected);
  });
});

describe('readTableauCredentials', () => {
  const good = { t: 'tok|en', s: 'site', u: 'user', v: '3.19', x: NOW + 60 };
  test('reads token, site and user of unexpired credentials', () => {
    expect(readTableauCredentials(JSON.stringify(good), NOW)).toEqual({ token: 'tok|en', siteId: 'site', userId: 'user' });
  });
  test.each([
    ['expired credentials', { ...good, x: NOW - 1 }],
    ['an empty token', { ...good, t: '' }],
    ['a token with a line break (header splitting)', { ...good, t: 'a\r\nX-Evil: 1' }],
    ['a missing site id', { ...good, s: undefined }],
    ['a non-numeric expiry', { ...good, x: 'later' }],
  ])('refuses %s', (_name, value) => {
    expect(readTableauCredentials(JSON.stringify(value), NOW)).toBeNull();
  });
  test('refuses text that is not JSON', () => {
    expect(readTableauCredentials('{', NOW)).toBeNull();
  });
});

describe('tableauUpstreamUrl', () => {
  test.each([
    ['the judged path with the raw query', '/api/3.19/sites/x/workbooks', '/api/3.19/sites/x//./workbooks;p=1?filter=name:eq:a%20b', 'https://tableau.example.com/api/3.19/sites/x/workbooks?filter=name:eq:a%20b'],
    ['the judged path re-escaped (space, non-ASCII, %, ? and #)', '/api/3.19/a b/é/%/?/#', '/api/3.19/a%20b/%C3%A9/%25/%3F/%23', 'https://tableau.example.com/api/3.19/a%20b/%C3%A9/%25/%3F/%23'],
    ['no query', '/api/3.19/serverinfo', '/api/3.19/serverinfo', 'https://tableau.example.com/api/3.19/serverinfo'],
    ['refuses anything outside /api/', '/apix/3.19', '/apix/3.19', null],
    ['refuses a path encodeURI cannot encode (lone surrogate)', '/api/\ud800', '/api/%ED%A0%80', null],
  ])('%s', (_name, judged, uri, expected) => {
    expect(tableauUpstreamUrl(tableau.origin, judged, uri, '/api/')).toBe(expected);
  });

  test.each([
    ['maps another prefix (TABLEAU_API_PATH=/tableau-api/) to Tableau\'s /api/', '/tableau-api/3.19/serverinfo', '/tableau-api/3.19/serverinfo?x=1', '/tableau-api/', 'https://tableau.example.com/api/3.19/serverinfo?x=1'],
    ['maps a nested prefix', '/bi/tableau/3.19/sites/x/workbooks', '/bi/tableau/3.19/sites/x/workbooks', '/bi/tableau/', 'https://tableau.example.com/api/3.19/sites/x/workbooks'],
    ['refuses the app\'s own /api/ when the prefix is another one', '/api/3.19/serverinfo', '/api/3.19/serverinfo', '/tableau-api/', null],
    ['refuses a path that only shares the prefix\'s start', '/tableau-apix/3.19', '/tableau-apix/3.19', '/tableau-api/', null],
    ['refuses a prefix without a trailing slash (it would join two names)', '/tableau-api/3.19', '/tableau-api/3.19', '/tableau-api', null],
    ['refuses an empty prefix (the variable unset in a hand-written location)', '/api/3.19', '/api/3.19', '', null],
  ])('%s', (_name, judged, uri, prefix, expected) => {
    expect(tableauUpstreamUrl(tableau.origin, judged, uri, prefix)).toBe(expected);
  });
});

describe('escapePath', () => {
  test('round-trips through decodeURI for every printable ASCII character and some non-ASCII', () => {
    let all = '/';
    for (let c = 32; c < 127; c++) all += String.fromCharCode(c);
    all += 'ä€😀';
    const escaped = escapePath(all)!;
    expect(escaped).not.toMatch(/[ ?#\u0080-\uffff]/);
    expect(decodeURIComponent(escaped)).toBe(all);
  });
});

describe('crossSiteProblem', () => {
  const ours = 'https://gw.example.com';
  test.each([
    ['a GET from another site (safe method)', 'GET', 'cross-site', 'https://evil.example', null],
    ['a HEAD without any origin header', 'HEAD', undefined, undefined, null],
    ['a POST the browser marks same-origin', 'POST', 'same-origin', ours, null],
    ['a DELETE with our Origin and no Fetch Metadata (older browser)', 'DELETE', undefined, 'HTTPS://GW.example.com', null],
    ['a cross-site form POST', 'POST', 'cross-site', 'https://evil.example', 'cross-site'],
    ['a cross-site POST whose script cannot set Origin but the browser marks it', 'PUT', 'cross-site', ours, 'cross-site'],
    ['a POST from a sibling subdomain', 'POST', 'same-site', 'https://app.example.com', 'same-site'],
    ['a POST typed in the address bar (Sec-Fetch-Site none) is not from our pages', 'POST', 'none', undefined, 'cross-site'],
    ['a POST from another origin without Fetch Metadata', 'POST', undefined, 'https://evil.example', 'origin-mismatch'],
    ['a POST with Origin: null (sandboxed frame)', 'PATCH', undefined, 'null', 'origin-mismatch'],
    ['a POST with neither header', 'POST', undefined, undefined, 'origin-missing'],
    ['a lower-case method name is not a safe method', 'get', undefined, undefined, 'origin-missing'],
  ])('%s', (_name, method, site, origin, expected) => {
    expect(crossSiteProblem(method, site, origin, ours)).toBe(expected);
  });
});
