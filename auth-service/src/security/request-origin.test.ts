import { describe, expect, test } from '@jest/globals';
import { checkLoginOrigin, checkLogoutOrigin, expectedOrigin } from './request-origin.js';

const ours = expectedOrigin('https', { host: 'gw.example.test' });

describe('expectedOrigin', () => {
  test('is scheme://Host, lower-cased, ignoring X-Forwarded-Host', () => {
    expect(expectedOrigin('https', { host: 'GW.Example.test:8443', 'x-forwarded-host': 'evil.example' })).toBe('https://gw.example.test:8443');
  });
  test('is undefined without a Host header', () => {
    expect(expectedOrigin('http', {})).toBeUndefined();
  });
});

describe('checkLoginOrigin', () => {
  test.each([
    ['no Origin, no Fetch Metadata (old browser, curl)', {}, true],
    ['same origin', { origin: 'https://gw.example.test', 'sec-fetch-site': 'same-origin' }, true],
    ['same-site sibling is not refused by Fetch Metadata alone (the CSRF token still applies)', { 'sec-fetch-site': 'same-site' }, true],
    ['another origin', { origin: 'https://evil.example' }, false],
    ['our host over plain http', { origin: 'http://gw.example.test' }, false],
    ['Origin: null (sandboxed frame) without Fetch Metadata', { origin: 'null' }, false],
    ['Origin: null from a sandboxed cross-site frame', { origin: 'null', 'sec-fetch-site': 'cross-site' }, false],
    ['Origin: null from our own no-referrer page, vouched same-origin by the browser', { origin: 'null', 'sec-fetch-site': 'same-origin' }, true],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, false],
    ['two Origin values', { origin: ['https://gw.example.test', 'https://evil.example'] }, false],
  ])('%s', (_name, headers, ok) => {
    expect(checkLoginOrigin(headers as never, ours).ok).toBe(ok);
  });
});

describe('checkLogoutOrigin', () => {
  test.each([
    ['no Origin, no Fetch Metadata', {}, true],
    ['Sec-Fetch-Site: none (typed URL)', { 'sec-fetch-site': 'none' }, true],
    ['same origin', { origin: 'https://gw.example.test', 'sec-fetch-site': 'same-origin' }, true],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, false],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, false],
    ['another origin', { origin: 'https://evil.example' }, false],
    ['Origin: null (sandboxed frame) without Fetch Metadata', { origin: 'null' }, false],
    ['Origin: null from a sandboxed cross-site frame', { origin: 'null', 'sec-fetch-site': 'cross-site' }, false],
    ['Origin: null from the app\'s own no-referrer page, vouched same-origin by the browser', { origin: 'null', 'sec-fetch-site': 'same-origin' }, true],
  ])('%s', (_name, headers, ok) => {
    expect(checkLogoutOrigin(headers as never, ours).ok).toBe(ok);
  });
});
