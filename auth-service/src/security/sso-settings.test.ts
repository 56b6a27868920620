import { describe, expect, it } from '@jest/globals';
import { serializeSessionCookie, sessionCookieDomain, sessionCookieNamePrefix } from './cookies.js';
import { cookieDomainProblem, hostOf, isUnderDomain, parseAppOrigins } from './sso-settings.js';

describe('cookieDomainProblem', () => {
  const base = 'https://auth.corp.example';
  it.each([
    ['accepts the parent domain of the sign-in host', 'corp.example', base, null],
    ['accepts the sign-in host itself', 'auth.corp.example', base, null],
    ['accepts a grandparent domain', 'example.org', 'https://a.b.example.org:8443', null],
  ])('%s', (_name, domain, url, expected) => {
    expect(cookieDomainProblem(domain, url)).toBe(expected);
  });
  it.each([
    ['refuses it without PUBLIC_BASE_URL (nothing to check it against)', 'corp.example', null, /needs PUBLIC_BASE_URL/],
    ['refuses a leading dot (old-style wildcard, easy to misread)', '.corp.example', base, /leading dot/],
    ['refuses a trailing dot', 'corp.example.', base, /lowercase domain name/],
    ['refuses an empty label (..)', 'corp..example', base, /lowercase domain name/],
    ['refuses upper case (the browser lowercases, the check would not)', 'Corp.Example', base, /lowercase domain name/],
    ['refuses a port', 'corp.example:443', base, /lowercase domain name/],
    ['refuses a wildcard', '*.corp.example', base, /lowercase domain name/],
    ['refuses an IP address', '127.0.0.1', 'http://127.0.0.1:8080', /IP address/],
    ['refuses a top-level domain (com)', 'com', 'https://auth.example.com', /public suffix/],
    ['refuses a single label (localhost)', 'localhost', 'http://localhost:8080', /public suffix/],
    ['refuses a public suffix (co.uk)', 'co.uk', 'https://auth.corp.co.uk', /public suffix/],
    ['refuses a shared hosting suffix (github.io)', 'github.io', 'https://me.github.io', /public suffix/],
    ['refuses a sibling domain of the sign-in host', 'other.example', base, /parent domains/],
    ['refuses a domain that merely ends like the host (xcorp.example)', 'p.example', 'https://auth.corp.example', /parent domains/],
    ['refuses a subdomain of the sign-in host', 'x.auth.corp.example', base, /parent domains/],
  ])('%s', (_name, domain, url, expected) => {
    expect(cookieDomainProblem(domain, url)).toMatch(expected);
  });
});

describe('parseAppOrigins', () => {
  it('keeps origins in order', () => {
    expect(parseAppOrigins('https://a.example, https://b.other:8443', 'https://auth.example')).toEqual({ ok: true, origins: ['https://a.example', 'https://b.other:8443'] });
  });
  it('accepts http origins when the sign-in host is http (tests, local setups)', () => {
    expect(parseAppOrigins('http://app.beta.test:8080', 'http://auth.alpha.test:8080')).toEqual({ ok: true, origins: ['http://app.beta.test:8080'] });
  });
  it.each([
    ['a path', 'https://a.example/app', /must be an origin/],
    ['a trailing slash', 'https://a.example/', /must be an origin/],
    ['upper case', 'https://A.example', /must be an origin/],
    ['the default port spelled out', 'https://a.example:443', /must be an origin/],
    ['credentials', 'https://user@a.example', /must be an origin/],
    ['another scheme', 'javascript://a.example', /must be an origin/],
    ['a bare host', 'a.example', /must be an origin/],
    ['an empty entry', 'https://a.example,,https://b.example', /entry 2/],
    ['a duplicate', 'https://a.example,https://a.example', /listed twice/],
    ['http next to an https sign-in host', 'http://a.example', /must use https/],
  ])('refuses %s', (_name, raw, expected) => {
    const result = parseAppOrigins(raw, 'https://auth.example');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.join('\n')).toMatch(expected);
  });
  it('refuses any entry without PUBLIC_BASE_URL', () => {
    expect(parseAppOrigins('https://a.example', null)).toEqual({ ok: false, problems: [expect.stringMatching(/needs PUBLIC_BASE_URL/)] });
  });
  it('reports every bad entry at once', () => {
    const result = parseAppOrigins('https://a.example/x,ftp://b.example', 'https://auth.example');
    expect(result.ok ? [] : result.problems).toHaveLength(2);
  });
});

describe('hosts and domains', () => {
  it.each([
    ['app.example:8443', 'app.example'],
    ['APP.example', 'app.example'],
    ['[::1]:8080', '::1'],
    ['app.example', 'app.example'],
  ])('hostOf(%s) is %s', (input, expected) => {
    expect(hostOf(input)).toBe(expected);
  });
  it('isUnderDomain needs a dot boundary (evilcorp.example is not under corp.example)', () => {
    expect(isUnderDomain('a.corp.example', 'corp.example')).toBe(true);
    expect(isUnderDomain('corp.example', 'corp.example')).toBe(true);
    expect(isUnderDomain('evilcorp.example', 'corp.example')).toBe(false);
  });
});

describe('the session cookie with SESSION_COOKIE_DOMAIN', () => {
  const config = { session: { cookieName: '__Secure-gw_session', cookieSecure: true }, sso: { cookieDomain: 'corp.example' } };
  it('has the Domain on hosts under it', () => {
    expect(serializeSessionCookie(config, 'app1.corp.example', 'v', 60)).toBe('__Secure-gw_session=v; HttpOnly; SameSite=Lax; Path=/; Domain=corp.example; Max-Age=60; Secure');
  });
  it('is host-only on a host outside it (a hand-off target), also when cleared', () => {
    expect(serializeSessionCookie(config, 'app.other.example:8443', '', 0)).toBe('__Secure-gw_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Secure');
  });
  it('is host-only without the setting', () => {
    expect(sessionCookieDomain(null, 'app1.corp.example')).toBeUndefined();
  });
  it('is named __Secure- over https with a domain, __Host- without, unprefixed over http', () => {
    expect(sessionCookieNamePrefix('https://auth.corp.example', 'corp.example')).toBe('__Secure-');
    expect(sessionCookieNamePrefix('https://auth.corp.example', null)).toBe('__Host-');
    expect(sessionCookieNamePrefix('http://auth.corp.example', 'corp.example')).toBe('');
  });
});
