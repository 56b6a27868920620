import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { decideAccess } from '../../../njs/src/core/policy.js';
import { policyPath } from '../../../njs/src/core/request-path.js';
import type { AccessRequest, CompiledPolicy } from '../../../njs/src/core/policy-contract.js';
import { compilePolicy, HORIZON_FUTURE_SECONDS, lintCompiledPolicy, loadPolicyFile, parseCidr, policyUserEntry, requiredLiteral } from './compile-policy.js';

const NOW = Date.UTC(2026, 0, 15) / 1000; // frozen clock: 2026-01-15T00:00Z
const at = (iso: string) => Date.parse(iso) / 1000;

function compileOk(source: unknown): CompiledPolicy {
  const r = compilePolicy(source, { now: NOW });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.compiled;
}

function errorsOf(source: unknown): string[] {
  const r = compilePolicy(source, { now: NOW });
  return r.ok ? [] : r.errors;
}

const kirk = { sub: 'u1', username: 'kirk', src: 'local', groups: ['Federation'], email: 'kirk@starfleet.example', email_verified: true };
const mccoy = { sub: 'u2', username: 'mccoy', src: 'local', groups: ['Medical'], email: 'mccoy@starfleet.example', email_verified: true };

function decide(compiled: CompiledPolicy, over: Partial<AccessRequest>) {
  return decideAccess(compiled, Object.assign({ method: 'GET', path: '/', claims: kirk, remoteAddr: '192.0.2.1', now: NOW }, over));
}

describe('seed scenario: /federation only for group Federation', () => {
  const rules = [
    { id: 'federation-members', path: { prefix: '/Federation/' }, priority: 10, decision: 'allow', conditions: { groups: ['Federation'] } },
    { id: 'federation-others', path: { prefix: '/federation' }, priority: 20, decision: 'deny' },
  ];
  const cases: [string, string | undefined, string, object | null, string, string][] = [
    ['lets kirk (Federation) in', 'deny', '/federation', kirk, 'allow', 'federation-members'],
    ['keeps mccoy out', 'allow', '/federation/ships', mccoy, 'deny', 'federation-others'],
    ['keeps a case variant out (/FEDERATION)', 'allow', '/FEDERATION', mccoy, 'deny', 'federation-others'],
    ['does not treat /federationX as /federation (default allow)', 'allow', '/federationX', mccoy, 'allow', 'default'],
    ['does not treat /federationX as /federation (default deny)', 'deny', '/federationX', kirk, 'deny', 'default'],
    ['denies by default when no default is given', undefined, '/bridge', kirk, 'deny', 'default'],
    ['never lets an anonymous request satisfy a group condition', 'allow', '/federation', null, 'deny', 'federation-others'],
  ];
  it.each(cases)('%s', (_name, dflt, p, claims, decision, rule) => {
    const compiled = compileOk(dflt === undefined ? { rules } : { default: dflt, rules });
    const d = decide(compiled, { path: p, claims: claims as AccessRequest['claims'] });
    expect([d.decision, d.rule]).toEqual([decision, rule]);
  });
});

describe('methods, public rules, priorities', () => {
  const compiled = compileOk({
    default: 'allow',
    rules: [
      { id: 'health', path: { exact: '/health' }, methods: ['GET'], priority: 1, decision: 'allow', public: true },
      { id: 'no-writes', path: { prefix: '/reports' }, methods: ['POST', 'PUT', 'DELETE'], priority: 5, decision: 'deny' },
      { id: 'reports-admin', path: { prefix: '/reports/admin' }, priority: 3, decision: 'deny' },
      { id: 'reports-admin-ops', path: { exact: '/reports/admin/status' }, priority: 2, decision: 'allow' },
      { id: 'no-php', path: { regex: '\\.php$' }, priority: 0, decision: 'deny' },
    ],
  });
  const cases: [string, string, string, string, string, boolean][] = [
    ['serves a public health check with HEAD (GET covers HEAD)', 'HEAD', '/health', 'allow', 'health', true],
    ['does not extend a GET-only public rule to POST', 'POST', '/health', 'allow', 'default', false],
    ['denies writes under /reports', 'PUT', '/reports/q1', 'deny', 'no-writes', false],
    ['allows reads under /reports (default)', 'GET', '/reports/q1', 'allow', 'default', false],
    ['lets the lower number win over the longer prefix (3 < 5)', 'POST', '/reports/admin/x', 'deny', 'reports-admin', false],
    ['lets an exact rule at priority 2 beat the prefix at 3', 'GET', '/reports/admin/status', 'allow', 'reports-admin-ops', false],
    ['lets a priority-0 regex beat everything, case-insensitively', 'GET', '/reports/admin/status/X.PHP', 'deny', 'no-php', false],
  ];
  it.each(cases)('%s', (_name, method, p, decision, rule, isPublic) => {
    const d = decide(compiled, { method, path: p });
    expect([d.decision, d.rule, d.public]).toEqual([decision, rule, isPublic]);
  });
});

describe('conditions compiled end to end', () => {
  const compiled = compileOk({
    default: 'deny',
    rules: [
      { id: 'ops-users', path: { prefix: '/ops' }, priority: 1, decision: 'allow', conditions: { users: ['Kirk'] } },
      { id: 'domain', path: { prefix: '/mail' }, priority: 1, decision: 'allow', conditions: { claims: { email_domain: 'StarFleet.example' } } },
      { id: 'creators', path: { prefix: '/tableau' }, priority: 1, decision: 'allow', conditions: { claims: { tableau_site_role: ['Creator', 'Explorer'] } } },
      { id: 'lan', path: { prefix: '/lan' }, priority: 1, decision: 'allow', conditions: { sourceIps: ['10.0.0.0/8', '2001:db8:abcd::/48'] } },
      { id: 'berlin-office', path: { prefix: '/berlin' }, priority: 1, decision: 'allow', conditions: { time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00', timeZone: 'Europe/Berlin' } } },
      { id: 'ny-night', path: { prefix: '/ny' }, priority: 1, decision: 'allow', conditions: { time: { days: ['sat'], from: '22:00', to: '02:00', timeZone: 'America/New_York' } } },
    ],
  });
  const cases: [string, Partial<AccessRequest>, string][] = [
    ['matches users case-insensitively', { path: '/ops', claims: kirk }, 'ops-users'],
    ['refuses another user', { path: '/ops', claims: mccoy }, 'default'],
    ['matches the email domain', { path: '/mail', claims: mccoy }, 'domain'],
    ['matches a Tableau site role', { path: '/tableau', claims: Object.assign({}, kirk, { tableau_site_role: 'Creator' }) }, 'creators'],
    ['refuses another site role', { path: '/tableau', claims: Object.assign({}, kirk, { tableau_site_role: 'Viewer' }) }, 'default'],
    ['matches an IPv4 CIDR', { path: '/lan', remoteAddr: '10.20.30.40' }, 'lan'],
    ['matches an IPv6 CIDR', { path: '/lan', remoteAddr: '2001:db8:abcd:12::5' }, 'lan'],
    ['refuses an IPv6 address outside the /48', { path: '/lan', remoteAddr: '2001:db8:abce::5' }, 'default'],
    // Berlin: CET (UTC+1) in winter, CEST (UTC+2) from 2026-03-29 01:00Z.
    ['Berlin winter: 07:30Z is 08:30 local, inside', { path: '/berlin', now: at('2026-03-27T07:30:00Z') }, 'berlin-office'],
    ['Berlin winter: 06:30Z is 07:30 local, outside', { path: '/berlin', now: at('2026-03-27T06:30:00Z') }, 'default'],
    ['Berlin after DST: 06:30Z is 08:30 local, inside', { path: '/berlin', now: at('2026-03-30T06:30:00Z') }, 'berlin-office'],
    ['Berlin after DST: 16:30Z is 18:30 local, outside', { path: '/berlin', now: at('2026-03-30T16:30:00Z') }, 'default'],
    ['Berlin: Saturday is outside', { path: '/berlin', now: at('2026-03-28T10:00:00Z') }, 'default'],
    // New York: EDT (UTC-4) until 2026-11-01 06:00Z, then EST (UTC-5). Window Sat 22:00 → Sun 02:00.
    ['NY: Sat 23:00 EDT is inside', { path: '/ny', now: at('2026-10-25T03:00:00Z') }, 'ny-night'],
    ['NY: Sun 01:30 EDT (after midnight, window begun Saturday) is inside', { path: '/ny', now: at('2026-10-25T05:30:00Z') }, 'ny-night'],
    ['NY: Sun 02:30 EDT is outside', { path: '/ny', now: at('2026-10-25T06:30:00Z') }, 'default'],
    ['NY: Sat 22:00 EST after the DST change is inside', { path: '/ny', now: at('2026-11-08T03:00:00Z') }, 'ny-night'],
    ['NY: 02:30Z on that Saturday is 21:30 EST, outside', { path: '/ny', now: at('2026-11-08T02:30:00Z') }, 'default'],
    ['NY: Friday 23:00 is outside', { path: '/ny', now: at('2026-11-07T04:00:00Z') }, 'default'],
    ['time conditions deny once the horizon has run out', { path: '/ny', now: NOW + HORIZON_FUTURE_SECONDS + 1 }, 'policy-horizon-expired'],
  ];
  it.each(cases)('%s', (_name, over, rule) => {
    expect(decide(compiled, over).rule).toBe(rule);
  });

  it('records the real DST transitions in the zone tables', () => {
    expect(compiled.zones['Europe/Berlin'].starts).toContain(at('2026-03-29T01:00:00Z'));
    expect(compiled.zones['America/New_York'].starts).toContain(at('2026-11-01T06:00:00Z'));
    expect(compiled.zones['Europe/Berlin'].offsets.slice(0, 3)).toEqual([3600, 7200, 3600]);
  });

  it('produces plain JSON (round-trips unchanged)', () => {
    expect(JSON.parse(JSON.stringify(compiled))).toEqual(compiled);
  });
});

describe('validation', () => {
  const base = { id: 'r', path: { prefix: '/a' }, priority: 1, decision: 'allow' };
  const cases: [string, unknown, RegExp][] = [
    ['rejects unknown top-level keys', { default: 'deny', rule: [] }, /policy: Unrecognized key.*rule/],
    ['rejects unknown rule keys', { rules: [{ ...base, prority: 2 }] }, /rules\[0\] \(r\).*prority/],
    ['rejects unknown condition keys', { rules: [{ ...base, conditions: { group: ['x'] } }] }, /conditions.*group/],
    ['rejects a bad default', { default: 'maybe' }, /policy\.default/],
    ['rejects a bad decision', { rules: [{ ...base, decision: 'permit' }] }, /rules\[0\] \(r\)\.decision/],
    ['rejects a non-integer priority', { rules: [{ ...base, priority: 1.5 }] }, /priority/],
    ['rejects two path kinds at once', { rules: [{ ...base, path: { prefix: '/a', exact: '/a' } }] }, /path/],
    ['rejects a lower-case method', { rules: [{ ...base, methods: ['get'] }] }, /methods\.0/],
    ['rejects a path without a leading slash', { rules: [{ ...base, path: { exact: 'a' } }] }, /must start with '\/'/],
    ['rejects a percent-encoded rule path', { rules: [{ ...base, path: { prefix: '/a%2e' } }] }, /must not contain/],
    ["rejects ';' in a prefix (the gate cuts ;params, so it could never match)", { rules: [{ ...base, path: { prefix: '/app;v=1' } }] }, /rules\[0\] \(r\)\.path\.prefix: must not contain .*';'/],
    ["rejects ';' in an exact path", { rules: [{ ...base, path: { exact: '/login;jsessionid=1' } }] }, /rules\[0\] \(r\)\.path\.exact: must not contain .*';'/],
    ['rejects a dot-dot rule path', { rules: [{ ...base, path: { prefix: '/a/../b' } }] }, /'\.\.' segments/],
    ['rejects a double slash', { rules: [{ ...base, path: { exact: '/a//b' } }] }, /'\/\/'/],
    ['rejects a bad regex', { rules: [{ ...base, path: { regex: '(' } }] }, /invalid regular expression/],
    ['rejects a bad IPv4 CIDR', { rules: [{ ...base, conditions: { sourceIps: ['10.0.0.256/8'] } }] }, /sourceIps\.0: bad IPv4/],
    ['rejects host bits in a CIDR', { rules: [{ ...base, conditions: { sourceIps: ['10.0.0.1/8'] } }] }, /host bits/],
    ['rejects a bad IPv6 CIDR', { rules: [{ ...base, conditions: { sourceIps: ['2001:db8:::/48'] } }] }, /bad IPv6/],
    ['rejects an address without a prefix length', { rules: [{ ...base, conditions: { sourceIps: ['10.0.0.1'] } }] }, /address\/prefix-length/],
    ['rejects a bad time', { rules: [{ ...base, conditions: { time: { from: '24:00', to: '02:00', timeZone: 'UTC' } } }] }, /time\.from/],
    ['rejects an empty window', { rules: [{ ...base, conditions: { time: { from: '08:00', to: '08:00', timeZone: 'UTC' } } }] }, /equal/],
    ['rejects an unknown time zone', { rules: [{ ...base, conditions: { time: { from: '08:00', to: '09:00', timeZone: 'Mars/Olympus' } } }] }, /unknown IANA time zone/],
    ['rejects a bad day', { rules: [{ ...base, conditions: { time: { days: ['monday'], from: '08:00', to: '09:00', timeZone: 'UTC' } } }] }, /days\.0/],
    ['rejects identity conditions on a public rule', { rules: [{ ...base, public: true, conditions: { groups: ['x'] } }] }, /public rule cannot/],
    ['rejects duplicate rule ids', { rules: [base, { ...base, path: { prefix: '/b' } }] }, /duplicate rule id/],
  ];
  it.each(cases)('%s', (_name, source, message) => {
    const errors = errorsOf(source);
    expect(errors.join('\n')).toMatch(message);
  });

  const overlaps: [string, object, object, boolean][] = [
    ['same exact path', { exact: '/a' }, { exact: '/A' }, true],
    ['a prefix covering a longer prefix', { prefix: '/a' }, { prefix: '/a/b/' }, true],
    ['a prefix covering an exact path', { prefix: '/a' }, { exact: '/a/x' }, true],
    ['the root prefix covering anything', { prefix: '/' }, { exact: '/z' }, true],
    ['a regex and any rule', { regex: 'x' }, { exact: '/z' }, true],
    ['a prefix and a look-alike sibling (/a vs /ab): no overlap', { prefix: '/a' }, { prefix: '/ab' }, false],
    ['different exact paths: no overlap', { exact: '/a' }, { exact: '/b' }, false],
    ['an exact path and the same path with a trailing slash (/a, /a/)', { exact: '/a' }, { exact: '/a/' }, true],
    ['an exact path below a prefix written with a trailing slash', { prefix: '/a/' }, { exact: '/a' }, true],
  ];
  it.each(overlaps)('overlap at equal priority: %s', (_name, p1, p2, isError) => {
    const errors = errorsOf({ rules: [{ ...base, id: 'one', path: p1 }, { ...base, id: 'two', path: p2 }] });
    expect(errors.some((e) => e.includes("rules 'one' and 'two' overlap"))).toBe(isError);
  });

  it('accepts overlapping rules at equal priority whose methods are disjoint', () => {
    expect(errorsOf({ rules: [{ ...base, id: 'one', methods: ['POST'] }, { ...base, id: 'two', path: { regex: '.' }, methods: ['GET'] }] })).toEqual([]);
  });

  it('refuses a regex sharing a priority with a GET rule when the regex is HEAD-only (GET covers HEAD)', () => {
    expect(errorsOf({ rules: [{ ...base, id: 'one', methods: ['GET'] }, { ...base, id: 'two', path: { regex: '.' }, methods: ['HEAD'] }] })).toHaveLength(1);
  });

  it('reports every problem at once', () => {
    const errors = errorsOf({
      default: 'deny',
      rules: [
        { ...base, id: 'a', decision: 'nope' },
        { ...base, id: 'b', conditions: { sourceIps: ['300.0.0.0/8', 'fe80::/200'] } },
        { ...base, id: 'c', path: { regex: '[' } },
        { ...base, id: 'c', path: { exact: '/c' }, priority: 7 },
        { ...base, id: 'd', path: { prefix: '/a/x' } },
        { ...base, id: 'e', conditions: { time: { from: '09:00', to: '10:00', timeZone: 'Nowhere/Else' } } },
        { ...base, id: 'f' },
      ],
    });
    expect(errors).toEqual([
      expect.stringContaining('rules[0] (a).decision'),
      expect.stringContaining('rules[1] (b).conditions.sourceIps.0'),
      expect.stringContaining('rules[1] (b).conditions.sourceIps.1'),
      expect.stringContaining('rules[2] (c).path.regex'),
      expect.stringContaining('rules[3] (c).id: duplicate'),
      expect.stringContaining('rules[5] (e).conditions.time.timeZone'),
      expect.stringContaining("rules 'd' and 'f' overlap"),
    ]);
  });

  it('compiles an exact path with a trailing slash to the key without it, and keeps the root', () => {
    const compiled = compileOk({
      rules: [
        { ...base, id: 'admin', path: { exact: '/Admin/' } },
        { ...base, id: 'root', path: { exact: '/' } },
      ],
    });
    expect(compiled.exact).toEqual({ '/admin': [0], '/': [1] });
    // Both spellings of the request reach it; the root rule covers only '/'.
    expect(decide(compiled, { path: '/admin' }).rule).toBe('admin');
    expect(decide(compiled, { path: '/ADMIN/' }).rule).toBe('admin');
    expect(decide(compiled, { path: '/admin/x' }).rule).toBe('default');
    expect(decide(compiled, { path: '/' }).rule).toBe('root');
  });

  it('warns when the default is missing, and treats it as deny', () => {
    const r = compilePolicy({ rules: [] }, { now: NOW });
    expect(r.ok && r.compiled.default).toBe('deny');
    expect(r.ok && r.warnings.join()).toMatch(/no 'default'/);
  });

  it.each([
    ['10.0.0.0/8', [167772160, 8]],
    ['0.0.0.0/0', [0, 0]],
    ['2001:db8::/32', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32]],
    ['::ffff:10.0.0.0/104', [0, 0, 0, 0, 0, 0xffff, 0x0a00, 0, 104]],
  ])('compiles CIDR %s without BigInt', (text, expected) => {
    expect(parseCidr(text)).toEqual(expected);
  });
});

describe('lint and loading', () => {
  const withTime = { default: 'deny', rules: [{ id: 't', path: { prefix: '/' }, priority: 1, decision: 'allow', conditions: { time: { from: '08:00', to: '09:00', timeZone: 'UTC' } } }] };

  it.each([
    ['is quiet right after compiling', 0, ''],
    ['warns when the horizon is within 180 days', HORIZON_FUTURE_SECONDS - 90 * 86400, /run out in 90 days/],
    ['says the tables have run out after the horizon', HORIZON_FUTURE_SECONDS + 1, /have run out/],
  ] as [string, number, RegExp | string][])('%s', (_name, later, expected) => {
    const text = lintCompiledPolicy(compileOk(withTime), NOW + later).join('\n');
    if (expected === '') expect(text).toBe('');
    else expect(text).toMatch(expected);
  });

  it('loads the same policy from YAML and JSON files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'policy-'));
    const yamlFile = path.join(dir, 'policy.yaml');
    const jsonFile = path.join(dir, 'policy.json');
    fs.writeFileSync(
      yamlFile,
      ['default: deny', 'rules:', '  - id: federation', '    path: { prefix: /federation }', '    priority: 10', '    decision: allow', '    conditions:', '      groups: [Federation]'].join('\n'),
    );
    fs.writeFileSync(jsonFile, JSON.stringify({ default: 'deny', rules: [{ id: 'federation', path: { prefix: '/federation' }, priority: 10, decision: 'allow', conditions: { groups: ['Federation'] } }] }));
    try {
      expect(compileOk(loadPolicyFile(yamlFile))).toEqual(compileOk(loadPolicyFile(jsonFile)));
      expect(() => loadPolicyFile(path.join(dir, 'policy.txt'))).toThrow(/\.json, \.yaml or \.yml/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('scale: 1,000 rules', () => {
  // 1,000 rules: 600 prefixes (/app/N and /app/N/sub) and 400 exact paths, plus 5 regex rules.
  const rules: object[] = [];
  for (let i = 0; i < 300; i++) {
    rules.push({ id: `app-${i}`, path: { prefix: `/app/${i}` }, priority: 100, decision: 'allow', conditions: { groups: [`team-${i}`] } });
    rules.push({ id: `app-${i}-sub`, path: { prefix: `/app/${i}/sub` }, priority: 50, decision: 'deny', methods: ['POST'] });
  }
  for (let i = 0; i < 395; i++) rules.push({ id: `page-${i}`, path: { exact: `/pages/${i}.html` }, priority: 10 + (i % 3), decision: 'allow' });
  for (let i = 0; i < 5; i++) rules.push({ id: `re-${i}`, path: { regex: `^/legacy${i}/.*\\.asp$` }, priority: 1000 + i, decision: 'deny' });
  const compiled = compileOk({ default: 'deny', rules });

  it('indexes every rule and keeps each candidate list short', () => {
    expect(compiled.rules).toHaveLength(1000);
    expect(Object.keys(compiled.prefix)).toHaveLength(600);
    expect(Object.keys(compiled.exact)).toHaveLength(395);
    expect(compiled.regex).toHaveLength(5);
    const longest = Math.max(...Object.values(compiled.prefix).concat(Object.values(compiled.exact)).map((l) => l.length));
    expect(longest).toBe(1);
  });

  const cases: [string, string, string, object, string, number][] = [
    ['decides a deep prefix with few rules examined', 'POST', '/app/299/sub/x/y', kirk, 'app-299-sub', 1],
    ['falls through the sub-rule to the team rule', 'GET', '/app/7/sub', { ...kirk, groups: ['team-7'] }, 'app-7', 2],
    ['decides an exact page', 'GET', '/pages/394.html', kirk, 'page-394', 1],
    ['examines only the regex rules when no indexed path matches', 'GET', '/legacy3/a.ASP', kirk, 're-3', 4],
    ['uses the default after the short lists', 'GET', '/nothing/here', kirk, 'default', 5],
  ];
  it.each(cases)('%s', (_name, method, p, claims, rule, examined) => {
    const d = decide(compiled, { method, path: p, claims: claims as AccessRequest['claims'] });
    expect([d.rule, d.examined]).toEqual([rule, examined]);
  });
});

describe('requiredLiteral (the regex prefilter the gate uses)', () => {
  const cases: Array<[string, string | undefined]> = [
    ['\\.(bak|old|swp)$', '.'],
    ['^/payroll(/|$)', '/payroll'],
    ['^/Reports/.*\\.PDF$', '/reports/'],
    ['^/(a|b)/secret\\.txt$', '/secret.txt'],
    ['\\/etc\\/passwd', '/etc/passwd'],
    ['foo?bar', 'bar'],
    ['ab+c', 'ab'],
    ['[/]admin', 'admin'],
    ['^/a|/b', undefined], // top-level alternation: nothing is required
    ['(x|y)', undefined],
    ['\\d+', undefined],
    ['[', undefined],
  ];
  it.each(cases)('%s requires %s', (source, expected) => {
    expect(requiredLiteral(source)).toBe(expected);
  });

  it('is sound: every path a regex matches contains its literal', () => {
    const regexes = [
      '\\.(bak|old|swp)$', '^/payroll(/|$)', '^/api/v[0-9]+/admin', 'foo?bar', '/x{2}y', 'a\\d+b', 'ab+c', '^/(a|b)/secret\\.txt$',
      '(?:/static)?/app\\.js', 'report[s]?/q\\d', '^/t/[^/]+/views/', 'x*y', '\\.php\\d?$', '^/Federation/Admin', 'a.c', 'ab{0,2}c',
    ];
    const pieces = ['/', 'a', 'b', 'c', 'x', 'y', '.', 'api', 'v1', 'v', '2', 'admin', 'payroll', 'foo', 'fobar', 'bar', 'static', 'app', 'js', 'php',
      'php5', 'bak', 'old', 'report', 'reports', 'q1', 't', 'views', 'federation', 'secret', 'txt', 'abbc', 'ac', 'xxy'];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let matched = 0;
    for (const source of regexes) {
      const re = new RegExp(source, 'i');
      const literal = requiredLiteral(source);
      for (let k = 0; k < 4000; k++) {
        let path = '/';
        const len = 1 + rand(6);
        for (let j = 0; j < len; j++) path += pieces[rand(pieces.length)] + (rand(3) === 0 ? '/' : '');
        path = path.toLowerCase();
        if (!re.test(path)) continue;
        matched++;
        if (literal !== undefined) expect([source, path, path.includes(literal)]).toEqual([source, path, true]);
      }
    }
    expect(matched).toBeGreaterThan(200); // the sample really exercises matches
  });

  it('is written into compiled regex rules only', () => {
    const r = compilePolicy({ default: 'allow', rules: [
      { id: 'bak', path: { regex: '\\.BAK$' }, priority: 1, decision: 'deny' },
      { id: 'alt', path: { regex: 'a|b' }, priority: 2, decision: 'deny' },
      { id: 'p', path: { prefix: '/x' }, priority: 3, decision: 'deny' },
    ] }, { now: 1_800_000_000 });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.compiled.rules.map((rule) => rule.literal)).toEqual(['.bak', undefined, undefined]);
  });
});

describe('users entries are source-qualified ids', () => {
  const cases: Array<[string, string, string]> = [
    ['a bare username is a local user', 'Kirk', 'local:kirk'],
    ['local: is lower-cased', 'LOCAL:Kirk', 'local:kirk'],
    ['tableau: is lower-cased', 'tableau:JKirk', 'tableau:jkirk'],
    ['a custom module user', 'custom:ldap:Spock', 'custom:ldap:spock'],
    ['an OIDC subject keeps its case', 'oidc:AbC-123', 'oidc:AbC-123'],
    ['an Entra object id keeps its case', 'azure:00000000-0000-0000-0000-00000000000A', 'azure:00000000-0000-0000-0000-00000000000A'],
  ];
  it.each(cases)('%s (%s → %s)', (_name, entry, id) => {
    expect(policyUserEntry(entry)).toBe(id);
  });

  it('refuses an unknown source, an empty id and a malformed custom entry, all at once', () => {
    const r = compilePolicy({ default: 'deny', rules: [
      { id: 'u', path: { prefix: '/u' }, priority: 1, decision: 'allow', conditions: { users: ['ldap:kirk', 'oidc:', 'custom:kirk'] } },
    ] }, { now: NOW });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      expect.stringMatching(/^rules\[0\] \(u\)\.conditions\.users\.0: unknown source 'ldap'.*'oidc:<sub>'.*\(got 'ldap:kirk'\)$/),
      expect.stringMatching(/^rules\[0\] \(u\)\.conditions\.users\.1: the part after the source is empty/),
      expect.stringMatching(/^rules\[0\] \(u\)\.conditions\.users\.2: a custom module's user is 'custom:<module-id>:<username>'/),
    ]);
  });

  it('compiles users: [kirk] so that an OIDC account named kirk does not match', () => {
    const compiled = compileOk({ default: 'deny', rules: [{ id: 'admins', path: { prefix: '/admin' }, priority: 1, decision: 'allow', conditions: { users: ['kirk'] } }] });
    expect(decide(compiled, { path: '/admin' }).rule).toBe('admins');
    expect(decide(compiled, { path: '/admin', claims: { sub: 'x', username: 'kirk', src: 'oidc', groups: [] } }).rule).toBe('default');
  });
});

describe('email_domain needs a verified e-mail', () => {
  const compiled = compileOk({ default: 'deny', rules: [{ id: 'mail', path: { prefix: '/mail' }, priority: 1, decision: 'allow', conditions: { claims: { email_domain: 'starfleet.example' } } }] });
  it('matches with email_verified true', () => {
    expect(decide(compiled, { path: '/mail' }).rule).toBe('mail');
  });
  it('refuses the same e-mail when the provider did not verify it', () => {
    expect(decide(compiled, { path: '/mail', claims: Object.assign({}, kirk, { email_verified: false }) }).rule).toBe('default');
  });
});

describe('slow regex rules are refused (ReDoS)', () => {
  it('refuses ^/reports/([a-z0-9]+-?)+/archive$ with a clear message', () => {
    const r = compilePolicy({ default: 'allow', rules: [
      { id: 'archive', path: { regex: '^/reports/([a-z0-9]+-?)+/archive$' }, priority: 1, decision: 'deny' },
      { id: 'nested', path: { regex: '^/(a+)+$' }, priority: 2, decision: 'deny' },
    ] }, { now: NOW });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(/^rules\[0\] \(archive\)\.path\.regex: slow regular expression refused: (can backtrack catastrophically|too complex to prove safe) .*'\[a-z0-9-\]\+' instead of '\(\[a-z0-9\]\+-\?\)\+'/);
    expect(r.errors[1]).toMatch(/^rules\[1\] \(nested\)\.path\.regex: slow regular expression refused/);
  }, 20_000);

  it('accepts the usual safe patterns', () => {
    compileOk({ default: 'allow', rules: [
      { id: 'a', path: { regex: '^/payroll(/|$)' }, priority: 1, decision: 'deny' },
      { id: 'b', path: { regex: '^/api/v[0-9]+/users/[^/]+$' }, priority: 2, decision: 'deny' },
      { id: 'c', path: { regex: '\\.(bak|old|swp)$' }, priority: 3, decision: 'deny' },
      { id: 'd', path: { regex: '^/t/[^/]+/views/' }, priority: 4, decision: 'deny' },
    ] });
  });
});

describe('non-ASCII rule paths fold like request paths', () => {
  const compiled = compileOk({ default: 'allow', rules: [
    { id: 'aerzte', path: { prefix: '/\u00c4rzte' }, priority: 1, decision: 'deny' },
    { id: 'cafe', path: { exact: '/caf\u00e9' }, priority: 2, decision: 'deny' },
    { id: 'regex-e', path: { regex: '^/r[\u00e9]sum' }, priority: 3, decision: 'deny' },
  ] });
  it('keys the compiled maps by the folded path', () => {
    expect(Object.keys(compiled.prefix)).toEqual(['/\u00e4rzte']);
    expect(Object.keys(compiled.exact)).toEqual(['/caf\u00e9']);
  });
  const cases: Array<[string, string, string]> = [
    ['/\u00c4rzte under a rule written /\u00c4rzte', '/\u00c4rzte/x', 'aerzte'],
    ['/\u00e4rzte (lower case)', '/\u00e4rzte', 'aerzte'],
    ['/CAF\u00c9 (upper-case \u00c9)', '/CAF\u00c9', 'cafe'],
    ['/R\u00c9SUM\u00c9 against [\u00e9]', '/R\u00c9SUM\u00c9', 'regex-e'],
  ];
  it.each(cases)('%s', (_name, p, rule) => {
    expect(decide(compiled, { path: policyPath(p, p) as string }).rule).toBe(rule);
  });

  it('refuses rule paths with characters the gate refuses (\u0131, \u017f, Kelvin sign)', () => {
    const r = compilePolicy({ default: 'allow', rules: [{ id: 'x', path: { prefix: '/federat\u0131on' }, priority: 1, decision: 'deny' }] }, { now: NOW });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatch(/^rules\[0\] \(x\)\.path\.prefix: must not contain .*Kelvin sign/);
  });
});

describe('group_aliases: one policy for Entra users with 3 groups (ID token) and 250 (Graph), both object ids', () => {
  const FINANCE_ID = '6f1c0001-0000-4000-8000-000000000000';
  const source = {
    default: 'deny',
    group_aliases: { Finance: FINANCE_ID, Contractors: 'c0000000-0000-4000-8000-00000000c0c0' },
    rules: [
      { id: 'no-contractors', path: { prefix: '/' }, priority: 1, decision: 'deny', conditions: { groups: ['alias:Contractors'] } },
      { id: 'finance', path: { prefix: '/finance' }, priority: 10, decision: 'allow', conditions: { groups: ['alias:Finance', 'Tableau Finance'] } },
      { id: 'by-claim', path: { prefix: '/claims' }, priority: 10, decision: 'allow', conditions: { claims: { groups: 'alias:Finance' } } },
    ],
  };
  const entra = (groups: string[]) => ({ sub: 'azure:t:o', username: 'u@x', src: 'azure', groups });

  it('compiles alias:<name> to the object id and leaves plain names as written', () => {
    const compiled = compileOk(source);
    expect(compiled.rules.find((r) => r.id === 'finance')!.conditions!.groups).toEqual([FINANCE_ID, 'Tableau Finance']);
    expect(compiled.rules.find((r) => r.id === 'by-claim')!.conditions!.claims).toEqual([{ name: 'groups', values: [FINANCE_ID] }]);
  });

  it.each([
    ['a 3-group user whose ID token carries the id', 3],
    ['a 250-group user whose ids came from Graph', 250],
  ])('allows %s', (_name, n) => {
    const groups = Array.from({ length: n - 1 }, (_, i) => `0000${i}-0000-4000-8000-000000000000`).concat([FINANCE_ID]);
    expect(decide(compileOk(source), { path: '/finance', claims: entra(groups) })).toMatchObject({ decision: 'allow', rule: 'finance' });
    expect(decide(compileOk(source), { path: '/finance', claims: entra(groups.concat(['c0000000-0000-4000-8000-00000000c0c0'])) })).toMatchObject({ decision: 'deny', rule: 'no-contractors' });
  });

  it('refuses an unknown alias, naming the rule and the known ones, and a policy with no aliases at all', () => {
    expect(errorsOf({ ...source, rules: [{ id: 'x', path: { prefix: '/x' }, priority: 5, decision: 'allow', conditions: { groups: ['alias:Finanse'] } }] })).toEqual([
      "rules[0] (x).conditions.groups.0: 'alias:Finanse' names no group_aliases entry (known: Finance, Contractors)",
    ]);
    expect(errorsOf({ rules: [{ id: 'x', path: { prefix: '/x' }, priority: 5, decision: 'allow', conditions: { groups: ['alias:Finance'] } }] })[0]).toContain('the policy has no group_aliases');
  });

  it('refuses an empty alias target and a comma in an alias', () => {
    const errors = errorsOf({ group_aliases: { Finance: '', 'A,B': 'id' }, rules: [] });
    expect(errors.some((e) => e.startsWith('policy.group_aliases.Finance:'))).toBe(true);
    expect(errors.some((e) => e.startsWith('policy.group_aliases.A,B:'))).toBe(true);
  });
});

describe('apps: per-app sections', () => {
  const source = {
    default: 'allow',
    rules: [{ id: 'federation-others', path: { prefix: '/federation' }, priority: 20, decision: 'deny' }],
    apps: {
      finance: {
        default: 'deny',
        rules: [
          { id: 'reports', path: { prefix: '/reports' }, priority: 10, decision: 'allow', conditions: { groups: ['Federation'] } },
          // Same id as a top-level rule: ids are unique per section.
          { id: 'federation-others', path: { prefix: '/federation' }, priority: 20, decision: 'allow' },
        ],
      },
      'hr-2': { default: 'allow' },
    },
  };

  it('compiles each app into a whole policy of its own, decided by its own rules and default', () => {
    const compiled = compileOk(source);
    expect(Object.keys(compiled.apps ?? {})).toEqual(['finance', 'hr-2']);
    const finance = compiled.apps!.finance;
    expect([decide(finance, { path: '/reports/q3' }).decision, decide(finance, { path: '/reports/q3' }).rule]).toEqual(['allow', 'reports']);
    expect(decide(finance, { path: '/reports', claims: mccoy }).rule).toBe('default');
    expect(decide(finance, { path: '/reports', claims: mccoy }).decision).toBe('deny');
    expect(decide(finance, { path: '/federation' }).decision).toBe('allow');
    expect(decide(compiled, { path: '/federation' }).decision).toBe('deny');
    expect(decide(compiled.apps!['hr-2'], { path: '/x' })).toMatchObject({ decision: 'allow', rule: 'default' });
    expect(finance.apps).toBeUndefined();
  });

  it('leaves `apps` out of a policy without apps (the compiled file stays as before)', () => {
    expect('apps' in compileOk({ default: 'allow', rules: [] })).toBe(false);
  });

  it('warns about an app without a default (deny)', () => {
    const r = compilePolicy({ default: 'allow', apps: { wiki: { rules: [] } } }, { now: NOW });
    expect(r.ok && r.warnings).toContain("apps.wiki: no 'default' given; requests of this app matching no rule are denied");
    expect(r.ok && r.compiled.apps!.wiki.default).toBe('deny');
  });

  it('reports every problem of every app at once, named by app, rule and field', () => {
    const errors = errorsOf({
      default: 'allow',
      rules: [{ id: 'x', path: { prefix: 'nope' }, priority: 1, decision: 'allow' }],
      apps: {
        Finance: { default: 'allow' },
        hr: { default: 'maybe', rules: [{ id: 'a', path: { prefix: '/a' }, priority: 1, decision: 'allow' }, { id: 'a', path: { prefix: '/b' }, priority: 2, decision: 'deny' }] },
        wiki: { rules: [{ id: 'one', path: { prefix: '/w' }, priority: 5, decision: 'allow' }, { id: 'two', path: { prefix: '/w/x' }, priority: 5, decision: 'deny' }], extra: true },
      },
    });
    expect(errors.some((e) => e.startsWith('rules[0] (x).path.prefix'))).toBe(true);
    expect(errors.some((e) => e.startsWith('apps.Finance: not an app name'))).toBe(true);
    expect(errors.some((e) => e.startsWith('policy.apps.hr.default'))).toBe(true);
    expect(errors).toContain('apps.hr.rules[1] (a).id: duplicate rule id, first used by apps.hr.rules[0]');
    expect(errors.some((e) => e.startsWith("apps.wiki: rules 'one' and 'two' overlap"))).toBe(true);
    expect(errors.some((e) => e.startsWith('policy.apps.wiki') && e.includes('extra'))).toBe(true);
  });
});
