import { describe, expect, test } from '@jest/globals';
import { checkLoginOrigin, checkLogoutOrigin, expectedOrigin, expectedOrigins } from './request-origin.js';

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

describe('expectedOrigins (PUBLIC_BASE_URL)', () => {
  // Behind a balancer that terminates TLS and forwards plain http, the request reaches the service as
  // http://gw.example.test while the browser sends Origin https://gw.example.test.
  const behindBalancer = expectedOrigins('http', { host: 'gw.example.test' }, 'https://gw.example.test');
  test.each([
    ['the public https origin, although the hop to the service was http', 'https://gw.example.test', true],
    ['the addressed origin still', 'http://gw.example.test', true],
    ['another origin', 'https://evil.example', false],
    ['the public host on another port', 'https://gw.example.test:8443', false],
  ])('accepts %s: %s', (_name, origin, ok) => {
    expect(checkLoginOrigin({ origin }, behindBalancer).ok).toBe(ok);
    expect(checkLogoutOrigin({ origin, 'sec-fetch-site': 'same-origin' }, behindBalancer).ok).toBe(ok);
  });
  test('without PUBLIC_BASE_URL only the addressed origin', () => {
    expect(expectedOrigins('https', { host: 'GW.example.test' }, null)).toEqual(['https://gw.example.test']);
  });
  test('a Host-less request still has the configured origin', () => {
    expect(expectedOrigins('http', {}, 'https://gw.example.test/')).toEqual(['https://gw.example.test']);
  });
});
