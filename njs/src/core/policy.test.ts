import { describe, expect, it } from '@jest/globals';
import { decideAccess, methodRulesCover, parseIPv4, parseIPv6, zoneOffset } from './policy.js';
import type { AccessRequest, CompiledPolicy, CompiledRule } from './policy-contract.js';

// Hand-written compiled policies: these tests pin the compiled format the gate preloads, independently
// of the compiler (whose own tests run source → compiler → this evaluator).

function policy(rules: CompiledRule[], paths: { [id: string]: string }, extra?: Partial<CompiledPolicy>): CompiledPolicy {
  const p: CompiledPolicy = {
    version: 1,
    default: 'deny',
    compiledAt: 1_700_000_000,
    horizonStart: 1_600_000_000,
    horizonEnd: 1_900_000_000,
    rules: rules,
    exact: {},
    prefix: {},
    regex: [],
    zones: {},
  };
  rules.forEach((r, i) => {
    const spec = paths[r.id];
    const kind = spec.slice(0, spec.indexOf(':'));
    const key = spec.slice(spec.indexOf(':') + 1);
    if (kind === 'regex') p.regex.push(i);
    else ((kind === 'exact' ? p.exact : p.prefix)[key] ??= []).push(i);
  });
  const order = (a: number, b: number) => rules[a].priority - rules[b].priority || a - b;
  Object.values(p.exact).forEach((l) => l.sort(order));
  Object.values(p.prefix).forEach((l) => l.sort(order));
  p.regex.sort(order);
  return Object.assign(p, extra);
}

const kirk = { sub: 'u1', username: 'Kirk', src: 'local', groups: ['Federation', 'Bridge'], email: 'kirk@Starfleet.example', email_verified: true, tableau_site_role: 'Creator' };
const mccoy = { sub: 'u2', username: 'mccoy', src: 'local', groups: ['Medical'], email: 'mccoy@starfleet.example', email_verified: true, tableau_site_role: ['Viewer'] };
/** An OIDC account that picked the username `kirk` (preferred_username is user-editable). */
const oidcKirk = { sub: 'AbC-123', username: 'kirk', src: 'oidc', groups: [], email: 'kirk@starfleet.example', email_verified: false };

function req(over: Partial<AccessRequest>): AccessRequest {
  return Object.assign({ method: 'GET', path: '/', claims: kirk, remoteAddr: '192.0.2.10', now: 1_700_000_000 }, over);
}

const seed = policy(
  [
    { id: 'federation-only', priority: 10, decision: 'allow', public: false, conditions: { groups: ['Federation'] } },
    { id: 'federation-others', priority: 20, decision: 'deny', public: false },
    { id: 'health', priority: 1, decision: 'allow', public: true, methods: { GET: true, HEAD: true } },
    { id: 'static', priority: 5, decision: 'allow', public: true },
    { id: 'legacy-php', priority: 3, decision: 'deny', public: false, regex: '\\.php$' },
    { id: 'admin-post', priority: 2, decision: 'deny', public: false, methods: { POST: true } },
  ],
  { 'federation-only': 'prefix:/federation', 'federation-others': 'prefix:/federation', health: 'exact:/health', static: 'prefix:/static', 'legacy-php': 'regex:', 'admin-post': 'prefix:/' },
);

describe('decideAccess: paths, methods, priorities', () => {
  const cases: [string, AccessRequest, string, string, boolean][] = [
    ['lets a Federation member into /federation', req({ path: '/federation' }), 'allow', 'federation-only', false],
    ['lets a Federation member below /federation/', req({ path: '/federation/ships/1' }), 'allow', 'federation-only', false],
    ['denies a non-member /federation (lower-priority deny)', req({ path: '/federation', claims: mccoy }), 'deny', 'federation-others', false],
    ['does not let /federationX match the /federation prefix', req({ path: '/federationX', claims: mccoy }), 'deny', 'default', false],
    ['treats a trailing slash as inside the prefix', req({ path: '/federation/', claims: mccoy }), 'deny', 'federation-others', false],
    ['matches case variants of the path (/FEDERATION)', req({ path: '/FEDERATION', claims: mccoy }), 'deny', 'federation-others', false],
    ['matches mixed-case variants below the prefix', req({ path: '/FeDeRaTiOn/x', claims: mccoy }), 'deny', 'federation-others', false],
    ['falls back to the default (deny) when nothing matches', req({ path: '/bridge' }), 'deny', 'default', false],
    ['gives an exact public rule to anonymous GET', req({ path: '/health', claims: null }), 'allow', 'health', true],
    ['covers HEAD through the compiled method map', req({ path: '/health', method: 'HEAD', claims: null }), 'allow', 'health', true],
    ['skips a rule whose methods do not include the request method', req({ path: '/health', method: 'DELETE', claims: null }), 'deny', 'default', false],
    ['does not take a method named like an Object member', req({ path: '/x', method: 'constructor' }), 'deny', 'default', false],
    ['lets the lower priority number win over a longer prefix', req({ path: '/federation/a', method: 'POST' }), 'deny', 'admin-post', false],
    ['lets a regex rule win by priority', req({ path: '/static/old.PHP', claims: null }), 'deny', 'legacy-php', false],
    ['lets the public prefix decide for anonymous static files', req({ path: '/static/app.js', claims: null }), 'allow', 'static', true],
    ['never matches identity conditions for anonymous requests', req({ path: '/federation', claims: null }), 'deny', 'federation-others', false],
  ];
  it.each(cases)('%s', (_name, r, decision, rule, isPublic) => {
    const d = decideAccess(seed, r);
    expect([d.decision, d.rule, d.public]).toEqual([decision, rule, isPublic]);
  });

  it('uses default allow when the policy says so', () => {
    const open = Object.assign({}, seed, { default: 'allow' as const });
    expect(decideAccess(open, req({ path: '/bridge' }))).toMatchObject({ decision: 'allow', rule: 'default', public: false });
  });
});

describe('decideAccess: conditions', () => {
  const p = policy(
    [
      { id: 'users', priority: 1, decision: 'allow', public: false, conditions: { users: ['local:kirk', 'oidc:AbC-999', 'custom:ldap:spock'] } },
      { id: 'domain', priority: 1, decision: 'allow', public: false, conditions: { claims: [{ name: 'email_domain', values: ['starfleet.example'] }] } },
      { id: 'role', priority: 1, decision: 'allow', public: false, conditions: { claims: [{ name: 'tableau_site_role', values: ['Viewer', 'Explorer'] }] } },
      { id: 'net4', priority: 1, decision: 'allow', public: false, conditions: { cidr4: [[3232235520, 16], [167772160, 8]] } },
      { id: 'net6', priority: 1, decision: 'allow', public: false, conditions: { cidr6: [[0x2001, 0xdb8, 0x1200, 0, 0, 0, 0, 0, 40]] } },
      { id: 'net-any', priority: 1, decision: 'allow', public: false, conditions: { cidr4: [[0, 0]] } },
      { id: 'both', priority: 1, decision: 'allow', public: false, conditions: { groups: ['Bridge'], cidr4: [[167772160, 8]] } },
    ],
    { users: 'exact:/u', domain: 'exact:/d', role: 'exact:/r', net4: 'exact:/n4', net6: 'exact:/n6', 'net-any': 'exact:/na', both: 'exact:/b' },
  );
  const cases: [string, Partial<AccessRequest>, string][] = [
    ['matches a local user case-insensitively (local:kirk)', { path: '/u', claims: kirk }, 'users'],
    ['refuses an OIDC account whose username is kirk (users are source-qualified)', { path: '/u', claims: oidcKirk }, 'default'],
    ['refuses a Tableau account named kirk for local:kirk', { path: '/u', claims: Object.assign({}, kirk, { src: 'tableau' }) }, 'default'],
    ['matches an OIDC user by sub, exactly', { path: '/u', claims: Object.assign({}, oidcKirk, { sub: 'AbC-999' }) }, 'users'],
    ['refuses an OIDC sub that differs only in case', { path: '/u', claims: Object.assign({}, oidcKirk, { sub: 'abc-999' }) }, 'default'],
    ['refuses an OIDC user whose username equals a listed sub', { path: '/u', claims: Object.assign({}, oidcKirk, { username: 'AbC-999' }) }, 'default'],
    ['matches a custom module user (custom:ldap:spock)', { path: '/u', claims: { sub: 's', username: 'Spock', src: 'custom:ldap' } }, 'users'],
    ['refuses claims without src for a users condition', { path: '/u', claims: { sub: 'u1', username: 'kirk' } }, 'default'],
    ['matches a local user without a sub claim (local ids use the username)', { path: '/u', claims: { username: 'kirk', src: 'local' } }, 'users'],
    ['refuses an OIDC user without a sub', { path: '/u', claims: { username: 'AbC-999', src: 'oidc' } }, 'default'],
    ['refuses an unverified e-mail for email_domain (email_verified false)', { path: '/d', claims: Object.assign({}, kirk, { email_verified: false }) }, 'default'],
    ['refuses an e-mail without email_verified for email_domain', { path: '/d', claims: Object.assign({}, kirk, { email_verified: undefined }) }, 'default'],
    ['refuses email_verified given as the string "true"', { path: '/d', claims: Object.assign({}, kirk, { email_verified: 'true' }) }, 'default'],
    ['refuses another user', { path: '/u', claims: mccoy }, 'default'],
    ['refuses a user condition for anonymous', { path: '/u', claims: null }, 'default'],
    ['matches the email domain case-insensitively', { path: '/d', claims: kirk }, 'domain'],
    ['refuses a look-alike domain', { path: '/d', claims: Object.assign({}, kirk, { email: 'kirk@starfleet.example.evil' }) }, 'default'],
    ['refuses an email without a domain', { path: '/d', claims: Object.assign({}, kirk, { email: 'kirk@' }) }, 'default'],
    ['matches an array claim when one element matches', { path: '/r', claims: mccoy }, 'role'],
    ['refuses a scalar claim outside the values', { path: '/r', claims: kirk }, 'default'],
    ['refuses a claim of the wrong type', { path: '/r', claims: Object.assign({}, kirk, { tableau_site_role: { x: 'Viewer' } }) }, 'default'],
    ['matches IPv4 in a /16', { path: '/n4', remoteAddr: '192.168.7.9' }, 'net4'],
    ['matches IPv4 in a /8 (high bit set safe)', { path: '/n4', remoteAddr: '10.255.255.255' }, 'net4'],
    ['refuses IPv4 just outside the /16', { path: '/n4', remoteAddr: '192.169.0.1' }, 'default'],
    ['refuses a malformed IPv4 (leading zero)', { path: '/n4', remoteAddr: '010.0.0.1' }, 'default'],
    ['matches an IPv4-mapped IPv6 address against IPv4 ranges', { path: '/n4', remoteAddr: '::ffff:10.1.2.3' }, 'net4'],
    ['matches IPv6 inside a /40 (partial group)', { path: '/n6', remoteAddr: '2001:db8:12ff::1' }, 'net6'],
    ['refuses IPv6 just outside the /40', { path: '/n6', remoteAddr: '2001:db8:1300::1' }, 'default'],
    ['refuses an IPv4 address for an IPv6-only rule', { path: '/n6', remoteAddr: '10.0.0.1' }, 'default'],
    ['matches 0.0.0.0/0 for any IPv4', { path: '/na', remoteAddr: '255.255.255.255' }, 'net-any'],
    ['requires every condition (group and network)', { path: '/b', remoteAddr: '10.0.0.1' }, 'both'],
    ['refuses when one condition fails', { path: '/b', remoteAddr: '11.0.0.1' }, 'default'],
  ];
  it.each(cases)('%s', (_name, over, rule) => {
    expect(decideAccess(p, req(over)).rule).toBe(rule);
  });
});

describe('methodRulesCover', () => {
  const cases: [string, string, boolean][] = [
    ['is true under a prefix where a rule names methods (admin-post on /federation)', '/federation/a', true],
    ['is true for a regex rule with methods that matches', '/x/upload.CGI', true],
    ['is false where no rule names methods', '/static/app.js', false],
    ['is false where the method rule is exact and the path is below it', '/health/x', false],
    ['is true on the exact path of a method rule', '/Health/', true],
  ];
  const p = policy(
    [
      { id: 'admin-post', priority: 2, decision: 'deny', public: false, methods: { POST: true } },
      { id: 'health', priority: 1, decision: 'allow', public: true, methods: { GET: true, HEAD: true } },
      { id: 'cgi', priority: 3, decision: 'deny', public: false, regex: '\\.cgi$', literal: '.cgi', methods: { DELETE: true } },
      { id: 'static', priority: 5, decision: 'allow', public: true },
    ],
    { 'admin-post': 'prefix:/federation', health: 'exact:/health', cgi: 'regex:', static: 'prefix:/static' },
  );
  it.each(cases)('%s', (_name, path, expected) => {
    expect(methodRulesCover(p, path)).toBe(expected);
  });
});

describe('decideAccess: time windows', () => {
  // A zone at UTC+1 until 1_700_100_000, then UTC+2 (a made-up DST switch), Mon-Fri 22:00-06:00.
  const zones = { 'Test/Zone': { starts: [1_600_000_000, 1_700_100_000], offsets: [3600, 7200] } };
  const p = policy(
    [{ id: 'night', priority: 1, decision: 'allow', public: false, conditions: { time: { days: 0b0111110, from: 22 * 60, to: 6 * 60, zone: 'Test/Zone' } } }],
    { night: 'prefix:/' },
    { zones: zones },
  );
  // 1_699_999_200 = Tue 2023-11-14 22:00 UTC.
  const tue22utc = 1_699_999_200;
  const cases: [string, number, string][] = [
    ['is inside at 23:00 local on a Tuesday', tue22utc, 'night'],
    ['is outside at 21:59 local', tue22utc - 3660, 'default'],
    ['is inside after midnight, in the window begun the evening before', tue22utc + 4 * 3600, 'night'],
    ['honours the new offset after the transition (04:30 UTC is 06:30 local, outside)', 1_700_109_000, 'default'],
    ['used the old offset before it (04:30 UTC the day before is 05:30 local, inside)', 1_700_109_000 - 86400, 'night'],
    ['denies outside the horizon instead of guessing', 1_900_000_000, 'policy-horizon-expired'],
    ['is outside on Saturday 23:00 local (Saturday not listed)', tue22utc + 4 * 86400, 'default'],
    ['is inside Saturday 01:00 local (window began Friday)', tue22utc + 3 * 86400 + 3 * 3600, 'night'],
  ];
  it.each(cases)('%s', (_name, now, rule) => {
    expect(decideAccess(p, req({ path: '/x', now: now })).rule).toBe(rule);
  });

  it('finds the offset by binary search at and around each transition', () => {
    const z = { starts: [0, 100, 200, 300], offsets: [1, 2, 3, 4] };
    expect([0, 99, 100, 199, 200, 299, 300, 10_000].map((t) => zoneOffset(z, t))).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });
});

describe('address parsers', () => {
  const v4: [string, number][] = [['0.0.0.0', 0], ['255.255.255.255', 4294967295], ['1.2.3', -1], ['1.2.3.256', -1], ['1.2.3.4 ', -1], ['a.b.c.d', -1]];
  it.each(v4)('parseIPv4(%j)', (s, n) => expect(parseIPv4(s)).toBe(n));
  const v6: [string, number[] | null][] = [
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['2001:DB8::', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]],
    ['1::2::3', null],
    ['1:2:3:4:5:6:7', null],
    ['12345::', null],
    ['g::', null],
  ];
  it.each(v6)('parseIPv6(%j)', (s, g) => expect(parseIPv6(s)).toEqual(g));
});
