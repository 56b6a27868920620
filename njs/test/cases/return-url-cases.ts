/**
 * Return-URL cases, shared by jest and the njs runner (which bundles core/return-url.ts itself,
 * since the shipped gate does not expose safeReturnPath). njs 0.7.9 subset.
 */

export interface ReturnPathCase {
  name: string;
  rd: unknown;
  expect: string;
}

export interface LoginLocationCase {
  name: string;
  loginPath: string;
  requestUri: string;
  expect: string;
}

/** Same-origin paths that must come back unchanged. */
const kept = [
  '/',
  '/federation',
  '/a/b?x=1&y=%20z#frag',
  '/search?q=a%2Fb',
  '/search?q=a%2fb%5Cc',
  '/.well-known/security.txt',
  '/a/..b/c.',
  '/files/report%20(final).pdf',
  '/caf%C3%A9',
  '/path;jsessionid=1?x=y',
  '/@user/profile',
  '/javascript:alert(1)',
  '/a?next=/b/c',
  '/a#/b',
];

export const returnPathCases: ReturnPathCase[] = [
  { name: 'keeps the plain path /federation', rd: '/federation', expect: '/federation' },
  { name: 'refuses a non-string (array from a repeated rd parameter)', rd: ['/a', '/b'], expect: '/' },
  { name: 'refuses undefined', rd: undefined, expect: '/' },
  { name: 'refuses a number', rd: 42, expect: '/' },
  { name: 'refuses the empty string', rd: '', expect: '/' },
  { name: 'refuses a path longer than 2048 characters', rd: '/' + new Array(2049).join('a'), expect: '/' },
  { name: 'keeps a path of exactly 2048 characters', rd: '/' + new Array(2048).join('a'), expect: '/' + new Array(2048).join('a') },
  { name: 'refuses a protocol-relative URL //evil', rd: '//evil.test/', expect: '/' },
  { name: 'refuses /\\evil (backslash is a slash to browsers)', rd: '/\\evil.test', expect: '/' },
  { name: 'refuses \\\\evil', rd: '\\\\evil.test', expect: '/' },
  { name: 'refuses a backslash deeper in the path', rd: '/a\\b', expect: '/' },
  { name: 'refuses an absolute URL https://evil', rd: 'https://evil.test/', expect: '/' },
  { name: 'refuses javascript: URLs', rd: 'javascript:alert(1)', expect: '/' },
  { name: 'refuses a relative path without a leading slash', rd: 'evil.test/x', expect: '/' },
  { name: 'refuses /%09/evil (encoded tab)', rd: '/%09/evil.test', expect: '/' },
  { name: 'refuses /\\t/evil (raw tab, stripped by browsers)', rd: '/\t/evil.test', expect: '/' },
  { name: 'refuses CR/LF (header splitting)', rd: '/a\r\nSet-Cookie: x=1', expect: '/' },
  { name: 'refuses a raw LF', rd: '/a\nb', expect: '/' },
  { name: 'refuses a NUL', rd: '/a\u0000b', expect: '/' },
  { name: 'refuses a space', rd: '/a b', expect: '/' },
  { name: 'refuses DEL', rd: '/a\u007fb', expect: '/' },
  { name: 'refuses non-ASCII (fullwidth/ideographic dots)', rd: '/a\u3002b', expect: '/' },
  { name: 'refuses a leading space', rd: ' //evil.test', expect: '/' },
  { name: 'refuses /%2f%2fevil (encoded slashes)', rd: '/%2f%2fevil.test', expect: '/' },
  { name: 'refuses %2F in the path', rd: '/a%2Fb', expect: '/' },
  { name: 'refuses %5c in the path', rd: '/%5cevil.test', expect: '/' },
  { name: 'refuses %0d%0a in the path', rd: '/a%0d%0aSet-Cookie:x', expect: '/' },
  { name: 'refuses %00 in the path', rd: '/a%00b', expect: '/' },
  { name: 'refuses a bare %', rd: '/a%zz', expect: '/' },
  { name: 'refuses a truncated escape at the end', rd: '/a%2', expect: '/' },
  { name: 'refuses a /../ segment', rd: '/a/../b', expect: '/' },
  { name: 'refuses a /./ segment', rd: '/a/./b', expect: '/' },
  { name: 'refuses a trailing /..', rd: '/a/..', expect: '/' },
  { name: 'refuses /.. alone', rd: '/..', expect: '/' },
  { name: 'refuses an encoded dot segment %2e%2e', rd: '/a/%2e%2e/b', expect: '/' },
  { name: 'refuses a mixed encoded dot segment .%2E', rd: '/a/.%2E?x', expect: '/' },
  { name: "refuses '//' inside the path", rd: '/a//b', expect: '/' },
  { name: "refuses '//' inside the query (a URL must be encoded there)", rd: '/a?next=https://evil.test', expect: '/' },
  { name: 'refuses angle brackets and quotes', rd: '/a?q=<script>"x"', expect: '/' },
  { name: 'refuses a backtick', rd: '/a`b', expect: '/' },
];

for (let i = 0; i < kept.length; i++) {
  returnPathCases.push({ name: 'keeps the same-origin path ' + kept[i], rd: kept[i], expect: kept[i] });
}

export const loginLocationCases: LoginLocationCase[] = [
  { name: 'encodes the request URI into rd', loginPath: '/login', requestUri: '/a/b?x=1&y=2', expect: '/login?rd=%2Fa%2Fb%3Fx%3D1%26y%3D2' },
  { name: 're-encodes percent escapes so rd decodes to the raw URI', loginPath: '/login', requestUri: '/q?s=a%2Fb', expect: '/login?rd=%2Fq%3Fs%3Da%252Fb' },
  { name: 'encodes a hostile absolute-form URI as data', loginPath: '/auth/login', requestUri: '//evil.test/\r\n', expect: '/auth/login?rd=%2F%2Fevil.test%2F%0D%0A' },
  { name: 'drops rd for a request URI too long to return to', loginPath: '/login', requestUri: '/' + new Array(2050).join('a'), expect: '/login' },
];

/**
 * The oauth2-proxy open-redirect list (njs/test/fixtures/oauth2-proxy-openredirects.txt) as
 * cases. Each line is tried as written, URL-query-unescaped like Go's url.QueryUnescape ('+' is a
 * space, %XX a byte; bytes >= 0x80 become single non-ASCII characters), and, where it contains
 * backslash escapes, with \t \n \r made real. Every variant must map to '/'.
 */
/** APP_ORIGINS as the safeReturnTarget cases (and the open-redirect list run against it) use them. */
export const returnTargetOrigins = ['https://app.example.com', 'http://app.beta.test:8080', 'https://www.google.com:8443'];

/** safeReturnTarget(rd, returnTargetOrigins): the absolute return URLs single sign-on accepts (issue 12). */
export const returnTargetCases: ReturnPathCase[] = [
  { name: 'target: keeps a safe path', rd: '/reports?x=1', expect: '/reports?x=1' },
  { name: 'target: keeps a URL on a listed origin', rd: 'https://app.example.com/reports?x=1', expect: 'https://app.example.com/reports?x=1' },
  { name: 'target: keeps a listed origin with its port', rd: 'http://app.beta.test:8080/', expect: 'http://app.beta.test:8080/' },
  { name: 'target: refuses an unlisted origin', rd: 'https://evil.example/', expect: '/' },
  { name: 'target: refuses a listed host on another port', rd: 'https://app.example.com:444/', expect: '/' },
  { name: 'target: refuses a listed host with another scheme', rd: 'http://app.example.com/', expect: '/' },
  { name: 'target: refuses a host that only starts like a listed one', rd: 'https://app.example.com.evil.example/', expect: '/' },
  { name: 'target: refuses userinfo after a listed origin', rd: 'https://app.example.com@evil.example/', expect: '/' },
  { name: 'target: refuses a bare listed origin without a path', rd: 'https://app.example.com', expect: '/' },
  { name: 'target: refuses // after a listed origin', rd: 'https://app.example.com//evil.example/', expect: '/' },
  { name: 'target: refuses a backslash after a listed origin', rd: 'https://app.example.com/\\evil.example', expect: '/' },
  { name: 'target: refuses upper case (browsers would lowercase, so would an attacker)', rd: 'HTTPS://APP.EXAMPLE.COM/', expect: '/' },
  { name: 'target: refuses a dot segment in the path', rd: 'https://app.example.com/a/../b', expect: '/' },
  { name: 'target: refuses a control character', rd: 'https://app.example.com/\tx', expect: '/' },
  { name: 'target: refuses a non-string', rd: 42, expect: '/' },
];

export function openRedirectCases(listText: string): ReturnPathCase[] {
  const lines = listText.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const cases: ReturnPathCase[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const label = 'oauth2-proxy open redirect line ' + (i + 1);
    cases.push({ name: label + ' as written: ' + JSON.stringify(line), rd: line, expect: '/' });
    const unescaped = queryUnescape(line);
    if (unescaped !== line) cases.push({ name: label + ' unescaped: ' + JSON.stringify(unescaped), rd: unescaped, expect: '/' });
    if (line.indexOf('\\') >= 0) {
      const real = line.replace(/\\t/g, '\t').replace(/\\n/g, '\n').replace(/\\r/g, '\r');
      if (real !== line) cases.push({ name: label + ' with real control characters: ' + JSON.stringify(real), rd: real, expect: '/' });
    }
  }
  return cases;
}

/** Go url.QueryUnescape, byte-wise: '+' -> ' ', %XX -> the character with that code. */
export function queryUnescape(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, function (m: string, hex: string) {
    return String.fromCharCode(parseInt(hex, 16));
  });
}
