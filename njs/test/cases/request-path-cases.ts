/**
 * Cases for policyPath(uri, requestUri) (njs/src/core/request-path.ts), shared by jest and the njs
 * runner (which bundles core/request-path.ts itself, since the shipped gate does not expose it).
 * `uri` is what nginx puts in $uri for `requestUri` (decoded once, `.`/`..`/`//` resolved unless
 * noted, query cut); `expect` is the path rules are matched against, or null for "ambiguous: 400".
 * njs 0.7.9 subset.
 */

export interface RequestPathCase {
  name: string;
  /** nginx's $uri. */
  uri: string;
  /** nginx's raw $request_uri. */
  requestUri: string;
  expect: string | null;
}

export const requestPathCases: RequestPathCase[] = [
  // Fast path: nothing was decoded and nothing needs cutting.
  { name: 'keeps the root path', uri: '/', requestUri: '/', expect: '/' },
  { name: 'keeps a plain path', uri: '/federation', requestUri: '/federation', expect: '/federation' },
  { name: 'keeps a deep plain path', uri: '/federation/ships/1701', requestUri: '/federation/ships/1701', expect: '/federation/ships/1701' },
  { name: 'keeps the case (the evaluator lower-cases)', uri: '/Federation/NCC', requestUri: '/Federation/NCC', expect: '/Federation/NCC' },
  { name: 'keeps a trailing slash', uri: '/federation/', requestUri: '/federation/', expect: '/federation/' },
  { name: 'keeps dots inside a file name', uri: '/static/app.min.js', requestUri: '/static/app.min.js', expect: '/static/app.min.js' },
  { name: 'never includes the query string', uri: '/federation', requestUri: '/federation?next=/admin', expect: '/federation' },
  {
    name: "takes the fast path when '%' is only in the query (returns $uri as is)",
    uri: '/federation',
    requestUri: '/federation?q=%2e%2e%2F..%5c',
    expect: '/federation',
  },
  {
    name: "ignores ';', '//' and '..' that appear only in the query",
    uri: '/reports',
    requestUri: '/reports?a=;b&c=//d&e=/../f',
    expect: '/reports',
  },

  // Path parameters (Tomcat/Java read /a;x=1 as /a).
  { name: 'cuts ;params from the last segment (/federation;x=1)', uri: '/federation;x=1', requestUri: '/federation;x=1', expect: '/federation' },
  { name: 'cuts ;params from a middle segment (/a;b/c)', uri: '/a;b/c', requestUri: '/a;b/c', expect: '/a/c' },
  { name: 'cuts ;jsessionid before a sub-path', uri: '/federation;jsessionid=AB12/ships', requestUri: '/federation;jsessionid=AB12/ships', expect: '/federation/ships' },
  { name: 'cuts ;params from every segment', uri: '/a;x/b;y/c;z', requestUri: '/a;x/b;y/c;z', expect: '/a/b/c' },
  { name: 'keeps the trailing slash when the last segment is only ;params (/x/;p)', uri: '/x/;p', requestUri: '/x/;p', expect: '/x/' },
  { name: 'drops a segment that is only ;params (/;x/federation)', uri: '/;x/federation', requestUri: '/;x/federation', expect: '/federation' },
  { name: 'reduces /; to the root', uri: '/;', requestUri: '/;', expect: '/' },
  { name: 'cuts ;params and keeps a trailing slash after them', uri: '/federation;x=1/', requestUri: '/federation;x=1/', expect: '/federation/' },
  { name: 'cuts ;params when the query holds escapes', uri: '/federation;x=1', requestUri: '/federation;x=1?a=%41', expect: '/federation' },

  // Dot segments hidden behind ;params (Tomcat: /public/..;/federation is /federation).
  { name: 'refuses ..; (Tomcat traversal past a public prefix)', uri: '/public/..;/federation', requestUri: '/public/..;/federation', expect: null },
  { name: 'refuses ..;x with a value', uri: '/public/..;x=1/federation', requestUri: '/public/..;x=1/federation', expect: null },
  { name: 'refuses .;x', uri: '/a/.;x/b', requestUri: '/a/.;x/b', expect: null },
  { name: 'refuses a trailing ..;', uri: '/federation/..;', requestUri: '/federation/..;', expect: null },
  { name: 'keeps a segment that only starts with dots (..b)', uri: '/a/..b/c.txt', requestUri: '/a/..b/c.txt', expect: '/a/..b/c.txt' },
  // Windows/IIS drops trailing dots and spaces from a segment, so these name /federation there.
  { name: 'refuses a segment ending in a dot (/federation.)', uri: '/federation.', requestUri: '/federation.', expect: null },
  { name: 'refuses an inner segment ending in a dot (/federation./x)', uri: '/federation./x', requestUri: '/federation./x', expect: null },
  { name: 'refuses a decoded %2e at the end of a segment', uri: '/federation.', requestUri: '/federation%2e', expect: null },
  { name: 'refuses a segment ending in a space (%20)', uri: '/federation ', requestUri: '/federation%20', expect: null },
  { name: 'refuses a dot before ;params (/federation.;x)', uri: '/federation.;x', requestUri: '/federation.;x', expect: null },
  { name: 'keeps a space inside a segment', uri: '/my files/a', requestUri: '/my%20files/a', expect: '/my files/a' },
  { name: 'keeps a dot inside a segment (file extension)', uri: '/static/app.min.js', requestUri: '/static/app.min.js', expect: '/static/app.min.js' },
  { name: 'keeps /.well-known', uri: '/.well-known/security.txt', requestUri: '/.well-known/security.txt', expect: '/.well-known/security.txt' },
  { name: 'refuses ...; (a segment of dots once ;params are cut)', uri: '/a/...;x', requestUri: '/a/...;x', expect: null },

  // Backslash: IIS and some frameworks read it as '/'.
  { name: 'refuses a backslash decoded from %5c', uri: '/public\\..\\federation', requestUri: '/public%5c..%5cfederation', expect: null },
  { name: 'refuses a raw backslash', uri: '/a\\b', requestUri: '/a\\b', expect: null },

  // Escapes left after nginx's single decoding: a double-decoding upstream would read them again.
  { name: 'refuses %2e%2e left from %252e%252e', uri: '/public/%2e%2e/federation', requestUri: '/public/%252e%252e/federation', expect: null },
  { name: 'refuses an upper-case leftover escape (%2F)', uri: '/a%2Fb', requestUri: '/a%252Fb', expect: null },
  { name: 'refuses a leftover %5c', uri: '/public/%5c', requestUri: '/public/%255c', expect: null },
  { name: 'refuses a leftover escape at the very end', uri: '/a%41', requestUri: '/a%2541', expect: null },
  { name: 'resolves what nginx decoded (/fed%65ration is /federation)', uri: '/federation', requestUri: '/fed%65ration', expect: '/federation' },
  { name: 'matches the $uri nginx made of %2e%2e (/public/%2e%2e/federation)', uri: '/federation', requestUri: '/public/%2e%2e/federation', expect: '/federation' },
  { name: "keeps a lone '%' not followed by two hex digits (%25 decoded)", uri: '/100%', requestUri: '/100%25', expect: '/100%' },
  { name: "keeps '%' followed by non-hex characters", uri: '/a%zz/b', requestUri: '/a%25zz/b', expect: '/a%zz/b' },
  { name: "keeps '%' followed by one hex digit at the end", uri: '/a%2', requestUri: '/a%252', expect: '/a%2' },
  { name: "keeps '%' followed by a hex digit and a non-hex character", uri: '/a%2g', requestUri: '/a%252g', expect: '/a%2g' },
  { name: 'keeps a decoded space', uri: '/my files/', requestUri: '/my%20files/', expect: '/my files/' },
  { name: 'keeps decoded non-ASCII text', uri: '/caf\u00e9', requestUri: '/caf%C3%A9', expect: '/caf\u00e9' },

  // Encoded '?' and '#': an upstream that decodes and re-parses the path cuts it there.
  { name: 'refuses ? decoded from %3f (/federation%3f)', uri: '/federation?', requestUri: '/federation%3f', expect: null },
  { name: 'refuses ? decoded from %3F in the middle', uri: '/federation?x/y', requestUri: '/federation%3Fx/y', expect: null },
  { name: 'refuses # decoded from %23 (/federation%23)', uri: '/federation#', requestUri: '/federation%23', expect: null },
  { name: 'refuses # decoded from %23 before a suffix', uri: '/federation#/public', requestUri: '/federation%23/public', expect: null },

  // Non-ASCII letters that .NET/Java case-insensitive compares read as ASCII.
  { name: 'refuses dotless \u0131 (/federat%C4%B1on reads as /federation)', uri: '/federat\u0131on', requestUri: '/federat%C4%B1on', expect: null },
  { name: 'refuses long s \u017f (/%c5%bfecret reads as /secret)', uri: '/\u017fecret', requestUri: '/%c5%bfecret', expect: null },
  { name: 'refuses the Kelvin sign (/%e2%84%aaeys reads as /keys)', uri: '/\u212aeys', requestUri: '/%e2%84%aaeys', expect: null },
  { name: 'refuses dotted capital \u0130 (lower-cases to i)', uri: '/\u0130mages', requestUri: '/%C4%B0mages', expect: null },
  { name: 'refuses \u0131 sent raw (no % in the request line)', uri: '/federat\u0131on', requestUri: '/federat\u0131on', expect: null },
  { name: 'refuses U+FFFD (what invalid UTF-8 decodes to)', uri: '/a\ufffdb', requestUri: '/a%ff%feb', expect: null },

  // Other non-ASCII letters are case-folded (simple mapping, as IIS); ASCII keeps its case.
  { name: 'folds \u00c4 to \u00e4 (/%C3%84rzte)', uri: '/\u00c4rzte', requestUri: '/%C3%84rzte', expect: '/\u00e4rzte' },
  { name: 'folds a path with non-ASCII entirely, ASCII included (/CAF%C3%89)', uri: '/CAF\u00c9', requestUri: '/CAF%C3%89', expect: '/caf\u00e9' },
  { name: 'folds raw non-ASCII without any escape', uri: '/\u00c4rzte', requestUri: '/\u00c4rzte', expect: '/\u00e4rzte' },
  { name: 'folds Greek final sigma and capital sigma alike', uri: '/\u03a3\u03bf\u03c6\u03af\u03b1\u03c2', requestUri: '/x', expect: '/\u03c3\u03bf\u03c6\u03af\u03b1\u03c3' },
  { name: 'keeps \u00df (no simple upper case; not ss)', uri: '/stra\u00dfe', requestUri: '/stra%C3%9Fe', expect: '/stra\u00dfe' },
  { name: 'folds Cyrillic', uri: '/\u0416\u0443\u0440\u043d\u0430\u043b', requestUri: '/x', expect: '/\u0436\u0443\u0440\u043d\u0430\u043b' },

  // Control characters nginx decodes into $uri (%01, %7f, %0d%0a); it refuses %00 and raw ones itself.
  { name: 'refuses \\u0001 decoded from %01', uri: '/a\u0001b', requestUri: '/a%01b', expect: null },
  { name: 'refuses DEL decoded from %7f', uri: '/a\u007fb', requestUri: '/a%7fb', expect: null },
  { name: 'refuses CR LF decoded from %0d%0a', uri: '/a\r\nX-Evil: 1', requestUri: '/a%0d%0aX-Evil:%201', expect: null },
  { name: 'refuses a tab decoded from %09', uri: '/federation\t', requestUri: '/federation%09', expect: null },
  { name: 'refuses \\u001f decoded from %1f', uri: '/\u001f', requestUri: '/%1f', expect: null },

  // What nginx normally removes (merge_slashes off, or a $uri rewritten by the site).
  { name: "collapses '//' inside the path", uri: '/a//b', requestUri: '/a//b', expect: '/a/b' },
  { name: "collapses a leading '//'", uri: '//federation', requestUri: '//federation', expect: '/federation' },
  { name: "collapses '//' at the end into one trailing slash", uri: '/federation//', requestUri: '/federation//', expect: '/federation/' },
  { name: "collapses '///' to the root", uri: '///', requestUri: '///', expect: '/' },
  { name: 'refuses a /./ segment', uri: '/a/./b', requestUri: '/a/./b', expect: null },
  { name: 'refuses a /../ segment', uri: '/public/../federation', requestUri: '/public/../federation', expect: null },
  { name: 'refuses a trailing /.', uri: '/a/.', requestUri: '/a/.', expect: null },
  { name: 'refuses a trailing /..', uri: '/a/..', requestUri: '/a/..', expect: null },
  { name: 'refuses /.. alone', uri: '/..', requestUri: '/..', expect: null },

  // Not a path at all.
  { name: 'refuses an empty $uri', uri: '', requestUri: '/', expect: null },
  { name: "refuses a $uri not starting with '/'", uri: 'federation', requestUri: 'federation', expect: null },
  { name: 'refuses the asterisk form (OPTIONS *)', uri: '*', requestUri: '*', expect: null },
];
