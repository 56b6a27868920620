/**
 * Whole-request cases with an access policy, shared by jest (decideRequest) and the njs runner
 * (gate.check on a fake request, with the policy given to the gate as nginx preloads it: see
 * asPreloaded). The policy is a hand-built compiled fixture, independent of the compiler, so these
 * cases pin the compiled format the gate reads. Sessions are signed by policyCaseCookie with the
 * shared fixtures (Node's crypto in jest, njs's in the runner). njs 0.7.9 subset.
 */
import type { CompiledPolicy, CompiledRule } from '../../src/core/policy-contract.js';
import { CLIENT_IP, UNKNOWN_KEY, signToken, validClaims, withClaims } from './fixtures.js';

export type PolicyAction = 'allow' | 'login' | 'deny' | 'forbidden' | 'bad-request' | 'renew';

export interface PolicyExpectation {
  action: PolicyAction;
  /** $gate_reason: 'session-valid' or 'public' on allow, else the deny reason. */
  reason: string;
  /** $gate_rule: the deciding rule id, 'default', or '' (bad-request: no rule was looked at). */
  rule: string;
  /** $gate_user: the session's username on allow and forbidden; absent means empty. */
  user?: string;
  /** $gate_location, login only. */
  location?: string;
  /** $gate_cookie on allow; absent means empty. */
  upstreamCookie?: string;
}

export interface PolicyCase {
  name: string;
  method: string;
  /** nginx's $uri. */
  uri: string;
  /** nginx's $request_uri. */
  requestUri: string;
  /** Session claims, signed into the session cookie; null: no session cookie. */
  claims: { [claim: string]: unknown } | null;
  /** Sign the claims with a key the gate does not know (a forged token). */
  forged?: boolean;
  /** Other cookies sent before the session cookie, e.g. 'theme=dark'. */
  otherCookies?: string;
  accept: string;
  /** $remote_addr; CLIENT_IP when absent. */
  remoteAddr?: string;
  /** $gate_app (`set $gate_app NAME;` in the location); absent: the default app. */
  app?: string;
  expect: PolicyExpectation;
}

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const JSON_CLIENT = 'application/json';

/** Epoch seconds of the fixture's made-up zone change: UTC until then, UTC+1 after. */
export const ZONE_CHANGE = 1699990000;

interface RuleAt {
  rule: CompiledRule;
  /** 'exact:/path', 'prefix:/path' (compiled keys: lower-case, no trailing slash) or 'regex'. */
  at: string;
}

/** Compiles by hand what the compiler would emit for `list` (index lists sorted by priority). */
function buildPolicy(list: RuleAt[], defaultDecision: 'allow' | 'deny', zones: CompiledPolicy['zones'], apps?: CompiledPolicy['apps']): CompiledPolicy {
  const p: CompiledPolicy = {
    version: 1,
    default: defaultDecision,
    compiledAt: 1699000000,
    horizonStart: 1600000000,
    horizonEnd: 1900000000,
    rules: [],
    exact: {},
    prefix: {},
    regex: [],
    zones: zones,
  };
  if (apps !== undefined) p.apps = apps;
  for (let i = 0; i < list.length; i++) {
    p.rules.push(list[i].rule);
    const at = list[i].at;
    if (at === 'regex') {
      p.regex.push(i);
      continue;
    }
    const colon = at.indexOf(':');
    const map = at.slice(0, colon) === 'exact' ? p.exact : p.prefix;
    const key = at.slice(colon + 1);
    if (map[key] === undefined) map[key] = [];
    map[key].push(i);
  }
  const byPriority = function (a: number, b: number): number {
    return p.rules[a].priority - p.rules[b].priority || a - b;
  };
  const exactKeys = Object.keys(p.exact);
  for (let i = 0; i < exactKeys.length; i++) p.exact[exactKeys[i]].sort(byPriority);
  const prefixKeys = Object.keys(p.prefix);
  for (let i = 0; i < prefixKeys.length; i++) p.prefix[prefixKeys[i]].sort(byPriority);
  p.regex.sort(byPriority);
  return p;
}

/**
 * The seed scenario of nginx/policy.yaml (/healthz public, /federation for group Federation at 10,
 * denied to others at 20, default allow) plus one rule of every other kind. A fresh object per call.
 */
export function policyFixture(): CompiledPolicy {
  return buildPolicy(
    [
      { at: 'exact:/healthz', rule: { id: 'healthz', priority: 1, decision: 'allow', public: true, methods: { GET: true, HEAD: true } } },
      { at: 'regex', rule: { id: 'no-php', priority: 3, decision: 'deny', public: false, regex: '\\.php$', literal: '.php' } },
      { at: 'prefix:/static/private', rule: { id: 'static-private', priority: 4, decision: 'deny', public: true } },
      { at: 'prefix:/static', rule: { id: 'static', priority: 5, decision: 'allow', public: true } },
      { at: 'prefix:/federation', rule: { id: 'federation-members', priority: 10, decision: 'allow', public: false, conditions: { groups: ['Federation'] } } },
      { at: 'prefix:/federation', rule: { id: 'federation-others', priority: 20, decision: 'deny', public: false } },
      {
        at: 'prefix:/intranet',
        rule: {
          id: 'office-network',
          priority: 30,
          decision: 'allow',
          public: false,
          // 10.0.0.0/8 and 2001:db8::/32
          conditions: { cidr4: [[167772160, 8]], cidr6: [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32]] },
        },
      },
      { at: 'prefix:/intranet', rule: { id: 'intranet-others', priority: 31, decision: 'deny', public: false } },
      // Tuesdays 23:00-23:30 and 08:00-18:00 in Test/Zone (UTC+1 at NOW, Tue 22:13:20 UTC).
      { at: 'prefix:/night', rule: { id: 'night-shift', priority: 40, decision: 'allow', public: false, conditions: { time: { days: 4, from: 23 * 60, to: 23 * 60 + 30, zone: 'Test/Zone' } } } },
      { at: 'prefix:/night', rule: { id: 'night-others', priority: 41, decision: 'deny', public: false } },
      { at: 'prefix:/day', rule: { id: 'day-shift', priority: 42, decision: 'allow', public: false, conditions: { time: { days: 4, from: 8 * 60, to: 18 * 60, zone: 'Test/Zone' } } } },
      { at: 'prefix:/day', rule: { id: 'day-others', priority: 43, decision: 'deny', public: false } },
      // Written as `exact: /admin/` in the source; the compiler drops the trailing slash from the key.
      { at: 'exact:/admin', rule: { id: 'admin-kirk', priority: 50, decision: 'allow', public: false, conditions: { users: ['local:kirk'] } } },
      { at: 'exact:/admin', rule: { id: 'admin-others', priority: 51, decision: 'deny', public: false } },
      // Its source is the name of an Object.prototype member: a regex cache that is a plain object
      // would return Object.prototype.toString for it. Every request matched by no earlier rule
      // reaches this rule.
      { at: 'regex', rule: { id: 'object-member-regex', priority: 95, decision: 'deny', public: false, regex: 'toString' } },
    ],
    'allow',
    { 'Test/Zone': { starts: [1600000000, ZONE_CHANGE], offsets: [0, 3600] } },
    {
      // finance: default deny, /reports for group Federation, /public open to anyone.
      finance: buildPolicy(
        [
          { at: 'prefix:/reports', rule: { id: 'finance-reports', priority: 10, decision: 'allow', public: false, conditions: { groups: ['Federation'] } } },
          { at: 'prefix:/public', rule: { id: 'finance-public', priority: 20, decision: 'allow', public: true } },
        ],
        'deny',
        {},
      ),
      // hr: default allow, but /federation (denied to everyone at the top level's rules) is open.
      hr: buildPolicy([{ at: 'prefix:/salaries', rule: { id: 'hr-salaries', priority: 10, decision: 'allow', public: false, conditions: { users: ['local:mccoy'] } } }, { at: 'prefix:/salaries', rule: { id: 'hr-others', priority: 11, decision: 'deny', public: false } }], 'allow', {}),
    },
  );
}

/**
 * `value` as nginx's js_preload_object presents it: every object and array without a prototype
 * (so `list.indexOf(...)` throws) and frozen. Works in place and returns `value`.
 */
export function asPreloaded<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const o = value as unknown as { [key: string]: unknown };
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) asPreloaded(o[keys[i]]);
  Object.setPrototypeOf(o, null);
  Object.freeze(o);
  return value;
}

/** The Cookie header of a case: its other cookies, then the signed (or forged) session if any. */
export function policyCaseCookie(c: PolicyCase): string | undefined {
  const parts: string[] = [];
  if (c.otherCookies !== undefined) parts.push(c.otherCookies);
  if (c.claims !== null) parts.push('gw_session=' + signToken(c.claims, c.forged ? UNKNOWN_KEY : undefined));
  return parts.length === 0 ? undefined : parts.join('; ');
}

export function policyCases(now: number): PolicyCase[] {
  const kirk = withClaims(validClaims(now), { username: 'kirk', name: 'James T. Kirk', email: 'kirk@starfleet.example', groups: ['Federation', 'Bridge'] });
  const mccoy = withClaims(validClaims(now), { username: 'mccoy', name: 'Leonard McCoy', email: 'mccoy@starfleet.example', groups: ['Medical'] });
  const expiredKirk = withClaims(kirk, { iat: now - 7200, exp: now - 3600 });
  const kirkFrom = function (addr: string): { [claim: string]: unknown } {
    return withClaims(kirk, { ip: addr });
  };
  const get = function (name: string, uri: string, claims: { [claim: string]: unknown } | null, accept: string, expect: PolicyExpectation): PolicyCase {
    return { name: name, method: 'GET', uri: uri, requestUri: uri, claims: claims, accept: accept, expect: expect };
  };
  const forbidden = function (rule: string, user: string): PolicyExpectation {
    return { action: 'forbidden', reason: 'policy-denied', rule: rule, user: user };
  };
  const allowed = function (rule: string, user: string): PolicyExpectation {
    return { action: 'allow', reason: 'session-valid', rule: rule, user: user };
  };
  const badRequest: PolicyExpectation = { action: 'bad-request', reason: 'path-ambiguous', rule: '' };
  return [
    // The seed scenario.
    get('lets kirk (group Federation) into /federation', '/federation', kirk, BROWSER, allowed('federation-members', 'kirk')),
    get('lets kirk below /federation/', '/federation/ships/enterprise', kirk, JSON_CLIENT, allowed('federation-members', 'kirk')),
    get('refuses mccoy on /federation with 403, not a login page', '/federation', mccoy, BROWSER, forbidden('federation-others', 'mccoy')),
    get('refuses mccoy on /federation from a JSON client with 403, not 401', '/federation', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('sends an anonymous browser on /federation to the login page', '/federation', null, BROWSER, {
      action: 'login',
      reason: 'token-missing',
      rule: '',
      location: '/login?rd=%2Ffederation',
    }),
    get('answers an anonymous JSON client on /federation with 401 token-missing', '/federation', null, JSON_CLIENT, { action: 'deny', reason: 'token-missing', rule: '' }),
    get('still asks an anonymous browser to log in where the default allows', '/reports', null, BROWSER, {
      action: 'login',
      reason: 'token-missing',
      rule: '',
      location: '/login?rd=%2Freports',
    }),
    get('lets mccoy through where the default allows', '/reports', mccoy, JSON_CLIENT, allowed('default', 'mccoy')),

    // Public rules.
    get('lets an anonymous GET /healthz through as public, without identity', '/healthz', null, JSON_CLIENT, { action: 'allow', reason: 'public', rule: 'healthz' }),
    {
      name: 'lets an anonymous HEAD /healthz through as public (GET covers HEAD)',
      method: 'HEAD',
      uri: '/healthz',
      requestUri: '/healthz',
      claims: null,
      accept: JSON_CLIENT,
      expect: { action: 'allow', reason: 'public', rule: 'healthz' },
    },
    {
      name: 'does not extend the GET-only public rule to an anonymous POST /healthz',
      method: 'POST',
      uri: '/healthz',
      requestUri: '/healthz',
      claims: null,
      accept: JSON_CLIENT,
      expect: { action: 'deny', reason: 'token-missing', rule: '' },
    },
    get('forwards the identity of a signed-in user on the public /healthz', '/healthz', kirk, JSON_CLIENT, allowed('healthz', 'kirk')),
    {
      name: 'lets an anonymous request with a forged token through a public path, without identity, and strips the token',
      method: 'GET',
      uri: '/static/app.js',
      requestUri: '/static/app.js?v=3',
      claims: kirk,
      forged: true,
      otherCookies: 'theme=dark',
      accept: BROWSER,
      expect: { action: 'allow', reason: 'public', rule: 'static', upstreamCookie: 'theme=dark' },
    },
    get('lets an expired session through a public path as anonymous', '/healthz', expiredKirk, BROWSER, { action: 'allow', reason: 'public', rule: 'healthz' }),
    get('renews the expired session of a browser on a non-public path', '/federation', expiredKirk, BROWSER, {
      action: 'renew',
      reason: 'token-expired',
      rule: '',
      location: '/login?rd=%2Ffederation',
    }),
    {
      name: 'answers a forged token on a non-public path with 401 token-invalid',
      method: 'GET',
      uri: '/federation',
      requestUri: '/federation',
      claims: kirk,
      forged: true,
      accept: JSON_CLIENT,
      expect: { action: 'deny', reason: 'token-invalid', rule: '' },
    },
    get('refuses an anonymous request on a public deny rule with 403', '/static/private/key.pem', null, BROWSER, { action: 'forbidden', reason: 'policy-denied', rule: 'static-private' }),
    get('refuses a signed-in user on a public deny rule with 403 and names the user', '/static/private/key.pem', kirk, BROWSER, forbidden('static-private', 'kirk')),

    // Case, slashes, look-alikes.
    get('refuses mccoy on /FEDERATION (case variant)', '/FEDERATION', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('refuses mccoy on /Federation/Ships (mixed case below the prefix)', '/Federation/Ships', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('lets kirk into /FEDERATION', '/FEDERATION', kirk, JSON_CLIENT, allowed('federation-members', 'kirk')),
    get('refuses mccoy on /federation/ (trailing slash)', '/federation/', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('does not apply /federation to /federationX (default allow)', '/federationX', mccoy, JSON_CLIENT, allowed('default', 'mccoy')),
    get('matches an exact rule with a trailing slash on the request (/admin/, kirk)', '/admin/', kirk, JSON_CLIENT, allowed('admin-kirk', 'kirk')),
    get('matches an exact rule with a trailing slash on the request (/admin/, mccoy)', '/admin/', mccoy, JSON_CLIENT, forbidden('admin-others', 'mccoy')),
    get('matches an exact rule case-insensitively (/ADMIN)', '/ADMIN', mccoy, JSON_CLIENT, forbidden('admin-others', 'mccoy')),
    get('does not extend an exact rule to paths below it (/admin/users)', '/admin/users', mccoy, JSON_CLIENT, allowed('default', 'mccoy')),

    // Path tricks (see request-path.ts).
    get('cuts ;params: /federation;x=1 is /federation for mccoy (403)', '/federation;x=1', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('cuts ;jsessionid from a middle segment for mccoy (403)', '/federation;jsessionid=1/ships', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('refuses /federat\u0131on (dotless i: .NET reads /federation) with 400', '/federat\u0131on', mccoy, JSON_CLIENT, badRequest),
    get('refuses /\u212aeys (Kelvin sign) with 400', '/\u212aeys', mccoy, JSON_CLIENT, badRequest),
    get('refuses /federation# (decoded %23) with 400', '/federation#', mccoy, JSON_CLIENT, badRequest),
    get('refuses /federation? (decoded %3f) with 400', '/federation?', mccoy, JSON_CLIENT, badRequest),
    get('refuses mccoy on /FEDERATION/\u00c4rzte (non-ASCII folded, ASCII lower-cased)', '/FEDERATION/\u00c4rzte', mccoy, JSON_CLIENT, forbidden('federation-others', 'mccoy')),
    get('refuses a path over 2,048 bytes with 400 path-too-long', '/federation/' + 'x'.repeat(2040), mccoy, JSON_CLIENT, { action: 'bad-request', reason: 'path-too-long', rule: '' }),
    {
      name: 'refuses _method in the query where a rule names methods (/healthz?_method=DELETE)',
      method: 'GET',
      uri: '/healthz',
      requestUri: '/healthz?_method=DELETE',
      claims: null,
      accept: JSON_CLIENT,
      expect: { action: 'bad-request', reason: 'method-override', rule: '' },
    },
    {
      name: 'lets _method through where no rule names methods (/reports?_method=DELETE)',
      method: 'POST',
      uri: '/reports',
      requestUri: '/reports?_method=DELETE',
      claims: mccoy,
      accept: JSON_CLIENT,
      expect: { action: 'allow', reason: 'session-valid', rule: 'default', user: 'mccoy' },
    },
    get('refuses ..; (Tomcat traversal from a public prefix) with 400', '/static/..;/federation', mccoy, BROWSER, badRequest),
    get('refuses ..; with 400 before asking an anonymous browser to log in', '/federation/..;/static', null, BROWSER, badRequest),
    {
      name: 'refuses a backslash (IIS reads it as /) with 400',
      method: 'GET',
      uri: '/static\\..\\federation',
      requestUri: '/static%5c..%5cfederation',
      claims: null,
      accept: BROWSER,
      expect: badRequest,
    },
    {
      name: 'refuses an escape left after nginx decoding (%252e%252e) with 400',
      method: 'GET',
      uri: '/static/%2e%2e/federation',
      requestUri: '/static/%252e%252e/federation',
      claims: mccoy,
      accept: JSON_CLIENT,
      expect: badRequest,
    },
    {
      name: 'matches what nginx made of /static/%2e%2e/federation ($uri /federation) for mccoy (403)',
      method: 'GET',
      uri: '/federation',
      requestUri: '/static/%2e%2e/federation',
      claims: mccoy,
      accept: JSON_CLIENT,
      expect: forbidden('federation-others', 'mccoy'),
    },
    {
      name: 'refuses a control character nginx decoded (%0d%0a) with 400',
      method: 'GET',
      uri: '/healthz\r\n',
      requestUri: '/healthz%0d%0a',
      claims: null,
      accept: JSON_CLIENT,
      expect: badRequest,
    },
    {
      name: 'ignores the query string: /healthz?x=%2e%2e is /healthz',
      method: 'GET',
      uri: '/healthz',
      requestUri: '/healthz?x=%2e%2e;y',
      claims: null,
      accept: JSON_CLIENT,
      expect: { action: 'allow', reason: 'public', rule: 'healthz' },
    },

    // Regex rules.
    get('lets a regex deny beat the public /static prefix by priority', '/static/old/index.php', null, JSON_CLIENT, { action: 'deny', reason: 'token-missing', rule: '' }),
    get('matches a regex case-insensitively for a signed-in user (403)', '/reports/INDEX.PHP', kirk, JSON_CLIENT, forbidden('no-php', 'kirk')),
    get('evaluates a regex whose source is an Object member name (toString)', '/docs/tostring', kirk, JSON_CLIENT, forbidden('object-member-regex', 'kirk')),

    // Source addresses (the session is bound to the same address).
    {
      name: 'lets kirk into /intranet from 10.0.0.0/8',
      method: 'GET',
      uri: '/intranet/wiki',
      requestUri: '/intranet/wiki',
      claims: kirkFrom('10.1.2.3'),
      remoteAddr: '10.1.2.3',
      accept: JSON_CLIENT,
      expect: allowed('office-network', 'kirk'),
    },
    {
      name: 'lets kirk into /intranet from 2001:db8::/32',
      method: 'GET',
      uri: '/intranet',
      requestUri: '/intranet',
      claims: kirkFrom('2001:db8:1::5'),
      remoteAddr: '2001:db8:1::5',
      accept: JSON_CLIENT,
      expect: allowed('office-network', 'kirk'),
    },
    get('refuses kirk on /intranet from an outside address (' + CLIENT_IP + ')', '/intranet/wiki', kirk, JSON_CLIENT, forbidden('intranet-others', 'kirk')),

    // Time windows (NOW is Tuesday 22:13:20 UTC, 23:13:20 in Test/Zone after its change to UTC+1).
    get('lets kirk into /night inside its local window (23:00-23:30, UTC+1)', '/night/log', kirk, JSON_CLIENT, allowed('night-shift', 'kirk')),
    get('refuses kirk on /day outside its local window (08:00-18:00)', '/day', kirk, JSON_CLIENT, forbidden('day-others', 'kirk')),

    // Applications: each named app is decided by its own section, the default app by the top level.
    inApp('finance', get('lets kirk (Federation) into the finance app\'s /reports', '/reports/q3', kirk, JSON_CLIENT, allowed('finance-reports', 'kirk'))),
    inApp('finance', get('refuses mccoy on finance /reports (its rule wants Federation)', '/reports/q3', mccoy, JSON_CLIENT, forbidden('default', 'mccoy'))),
    inApp('finance', get('applies the finance default (deny), not the top-level default (allow)', '/anything', kirk, JSON_CLIENT, forbidden('default', 'kirk'))),
    inApp('finance', get('lets an anonymous request through finance\'s public rule', '/public/logo.png', null, JSON_CLIENT, { action: 'allow', reason: 'public', rule: 'finance-public' })),
    inApp('finance', get('ignores the top-level rules in an app (no healthz rule in finance)', '/healthz', null, JSON_CLIENT, { action: 'deny', reason: 'token-missing', rule: '' })),
    inApp('hr', get('lets mccoy into hr /salaries (users rule)', '/salaries', mccoy, JSON_CLIENT, allowed('hr-salaries', 'mccoy'))),
    inApp('hr', get('refuses kirk on hr /salaries', '/salaries/2026', kirk, JSON_CLIENT, forbidden('hr-others', 'kirk'))),
    inApp('hr', get('lets mccoy into hr /federation: the default app\'s deny rule does not apply', '/federation', mccoy, JSON_CLIENT, allowed('default', 'mccoy'))),
    get('keeps the default app\'s rules for a request naming no app', '/reports/q3', mccoy, JSON_CLIENT, allowed('default', 'mccoy')),
    inApp('payroll', get('refuses an app the policy does not know (app-unknown), even for a valid session', '/reports', kirk, JSON_CLIENT, { action: 'forbidden', reason: 'app-unknown', rule: '' })),
    inApp('payroll', get('refuses an unknown app before asking an anonymous browser to log in', '/reports', null, BROWSER, { action: 'forbidden', reason: 'app-unknown', rule: '' })),
    inApp('constructor', get('refuses an app named like an Object member (constructor)', '/', kirk, JSON_CLIENT, { action: 'forbidden', reason: 'app-unknown', rule: '' })),
  ];
}

/** `c` as a request of the location naming app `app` (`set $gate_app app;`). */
function inApp(app: string, c: PolicyCase): PolicyCase {
  c.app = app;
  c.name = 'app ' + app + ': ' + c.name;
  return c;
}
