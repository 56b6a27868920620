import { describe, expect, test } from '@jest/globals';
import type { TableauGateConfig } from './session-contract.js';
import { isSealedShape, readTableauCredentials, tableauKeyFor, tableauUpstreamUrl } from './tableau-api.js';

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
    ['keeps the raw path and query', '/api/3.19/sites/x/workbooks?filter=name:eq:a%20b', 'https://tableau.example.com/api/3.19/sites/x/workbooks?filter=name:eq:a%20b'],
    ['refuses anything outside /api/', '/apix/3.19', null],
    ['refuses an absolute-form URI', 'http://evil/api/3.19', null],
  ])('%s', (_name, uri, expected) => {
    expect(tableauUpstreamUrl(tableau.origin, uri)).toBe(expected);
  });
});
