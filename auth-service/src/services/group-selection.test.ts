import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { verifySessionToken } from '../../../njs/src/core/token.js';
import { compilePolicy } from '../policy/compile-policy.js';
import { POLICY_OFF } from '../policy/policy-runtime.js';
import { createGroupSelectionSource } from './group-selection-source.js';
import {
  MAX_TOKEN_GROUP_BYTES,
  NO_PAYLOAD_GROUPS,
  groupsDigest,
  parsePayloadGroups,
  policyGroupNames,
  selectTokenGroups,
  SessionTooLargeError,
  type GroupSelection,
  type PayloadGroupsRule,
} from './group-selection.js';
import { headerSegmentFor, issueSessionToken } from './session-token.js';

const NOW = 1_750_000_000;
/** Names as long as a Tableau group name often is (~40 bytes): 1,000 of them are ~42 KB. */
const many = (n: number, prefix = 'Department of Examples – team ') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
const payload = (raw: string): PayloadGroupsRule => {
  const r = parsePayloadGroups(raw);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.rule;
};
const sel = (policyGroups: string[], rule: PayloadGroupsRule = NO_PAYLOAD_GROUPS): GroupSelection => ({ policyGroups: new Set(policyGroups), payload: rule });
const compiled = (source: unknown) => {
  const r = compilePolicy(source, { now: NOW });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.compiled;
};

describe('parsePayloadGroups (PAYLOAD_GROUPS)', () => {
  test.each([
    ['unset is nothing beyond the policy', undefined, NO_PAYLOAD_GROUPS],
    ['blank is nothing beyond the policy', '  ', NO_PAYLOAD_GROUPS],
    ['exact names and prefixes, trimmed', ' Finance , App-* ', { all: false, exact: ['Finance'], prefixes: ['App-'] }],
    ['* is every group', '*', { all: true, exact: [], prefixes: [] }],
  ])('%s', (_name, raw, rule) => {
    expect(parsePayloadGroups(raw)).toEqual({ ok: true, rule });
  });

  test('reports every bad entry at once: an empty entry and a * inside a name', () => {
    const r = parsePayloadGroups('Finance,,A*B,*x');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(3);
    expect(r.errors[0]).toContain('entry 2 of 4 is empty');
    expect(r.errors[1]).toContain('"A*B"');
    expect(r.errors[2]).toContain('"*x"');
  });
});

describe('policyGroupNames', () => {
  test('collects groups of allow and deny rules and of claims conditions on `groups`; policy off names none', () => {
    const policy = compiled({
      default: 'deny',
      rules: [
        { id: 'ops', path: { prefix: '/ops' }, priority: 10, decision: 'allow', conditions: { groups: ['Ops', 'SRE'] } },
        { id: 'no-contractors', path: { prefix: '/' }, priority: 1, decision: 'deny', conditions: { groups: ['Contractors'] } },
        { id: 'by-claim', path: { prefix: '/claims' }, priority: 10, decision: 'allow', conditions: { claims: { groups: ['Auditors'], src: 'local' } } },
        { id: 'plain', path: { prefix: '/open' }, priority: 10, decision: 'allow' },
      ],
    });
    expect([...policyGroupNames(policy)].sort()).toEqual(['Auditors', 'Contractors', 'Ops', 'SRE']);
    expect(policyGroupNames(POLICY_OFF).size).toBe(0);
  });
});

describe('selectTokenGroups', () => {
  test('keeps only the groups the policy names when PAYLOAD_GROUPS is unset, and says the list was filtered', () => {
    const all = ['Ops', ...many(998), 'Contractors'];
    const out = selectTokenGroups(all, sel(['Contractors', 'Ops', 'Not a member']));
    expect(out.groups).toEqual(['Ops', 'Contractors']);
    expect(out).toMatchObject({ filtered: true, count: 1000, overBudget: 0 });
    expect(out.digest).toBe(groupsDigest(all));
  });

  test('a user in no named group and no PAYLOAD_GROUPS carries an empty list (the X-Payload-groups behaviour change)', () => {
    expect(selectTokenGroups(['A', 'B'], sel([]))).toMatchObject({ groups: [], filtered: true, count: 2 });
  });

  test('nothing filtered: no count or digest needed, order and content kept, duplicates dropped', () => {
    const out = selectTokenGroups(['b', 'a', 'b'], sel(['a'], payload('*')));
    expect(out).toMatchObject({ groups: ['b', 'a'], filtered: false, count: 2 });
  });

  test('PAYLOAD_GROUPS exact names and prefixes add groups the upstream needs', () => {
    const out = selectTokenGroups(['App-Read', 'Finance', 'HR', 'App-Write', 'Ops'], sel(['Ops'], payload('Finance,App-*')));
    expect(out.groups).toEqual(['App-Read', 'Finance', 'App-Write', 'Ops']);
    expect(out.filtered).toBe(true);
  });

  test('`*` with 1,000 groups stays within MAX_TOKEN_GROUP_BYTES, policy groups first whatever their position', () => {
    const all = [...many(999), 'Deny-Me'];
    const out = selectTokenGroups(all, sel(['Deny-Me'], payload('*')));
    expect(Buffer.byteLength(JSON.stringify(out.groups))).toBeLessThanOrEqual(MAX_TOKEN_GROUP_BYTES);
    expect(out.groups).toContain('Deny-Me');
    expect(out.overBudget).toBe(1000 - out.groups.length);
    expect(out.filtered).toBe(true);
  });

  test('refuses (SessionTooLargeError, 403 ERR_SESSION_TOO_LARGE) when the named groups alone exceed the budget, never a cut list', () => {
    const all = many(1000);
    let err: unknown;
    try {
      selectTokenGroups(all, sel(all.slice(0, 100)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SessionTooLargeError);
    expect(err).toMatchObject({ code: 'ERR_SESSION_TOO_LARGE', status: 403, neededGroups: 100 });
  });

  test('the digest is independent of order and duplicates, and differs for another list', () => {
    expect(groupsDigest(['b', 'a'])).toBe(groupsDigest(['a', 'b']));
    expect(selectTokenGroups(['b', 'a', 'a'], sel([])).digest).toBe(groupsDigest(['a', 'b']));
    expect(groupsDigest(['a', 'b'])).not.toBe(groupsDigest(['a', 'b', 'c']));
    expect(groupsDigest(['a'])).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('issueSessionToken with a group selection', () => {
  const secret = crypto.randomBytes(48).toString('base64url');
  test('a 1,000-group user gets a token under 2 KB that the gate accepts, with groups_count and groups_digest', () => {
    const groups = [...many(999), 'Ops'];
    const { token, claims } = issueSessionToken({
      identity: { sub: 's1', username: 'u', groups, src: 'tableau' },
      ip: '192.0.2.1',
      secret,
      ttlSeconds: 300,
      now: NOW * 1000,
      groupSelection: sel(['Ops'], payload('Department*')),
    });
    expect(token.length).toBeLessThan(2100);
    expect(claims).toMatchObject({ groups_count: 1000, groups_digest: groupsDigest(groups) });
    expect(claims.groups).toContain('Ops');
    const verdict = verifySessionToken(token, {
      config: { keys: { [headerSegmentFor(secret)]: secret }, keyRetiredAt: {}, leewaySeconds: 0, maxSessionSeconds: 3600, ipBinding: 'exact' },
      now: NOW + 1,
      remoteAddr: '192.0.2.1',
      hmac: (k, data) => crypto.createHmac('sha256', k).update(data).digest('base64url'),
      digest: (s) => crypto.createHash('sha256').update(s).digest('hex'),
      decode: (b) => Buffer.from(b, 'base64url').toString('utf8'),
    });
    expect(verdict).toMatchObject({ ok: true, claims: { groups_count: 1000 } });
  });

  test('an unfiltered token has no groups_count or groups_digest', () => {
    const { claims } = issueSessionToken({ identity: { sub: 's1', username: 'u', groups: ['a'], src: 'local' }, ip: '192.0.2.1', secret, ttlSeconds: 300, now: NOW * 1000, groupSelection: sel(['a']) });
    expect(claims.groups_count).toBeUndefined();
    expect(claims.groups_digest).toBeUndefined();
  });
});

describe('createGroupSelectionSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-groups-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const gateConfigFile = join(dir, 'gate-config.json');
  const policyFile = join(dir, 'policy.json');
  const withGroup = (g: string) => JSON.stringify(compiled({ rules: [{ id: 'r', path: { prefix: '/' }, priority: 1, decision: 'allow', conditions: { groups: [g] } }] }));

  test('reads runtime/policy.json next to GATE_CONFIG_FILE and follows a rewrite (policy reload)', () => {
    writeFileSync(policyFile, withGroup('First'));
    const source = createGroupSelectionSource({ gateConfigFile, accessPolicy: null, payloadGroups: NO_PAYLOAD_GROUPS });
    expect([...source().policyGroups]).toEqual(['First']);
    writeFileSync(policyFile, withGroup('Second-longer'));
    expect([...source().policyGroups]).toEqual(['Second-longer']);
  });

  test('fails closed when the compiled policy cannot be read or is not a policy', () => {
    const source = createGroupSelectionSource({ gateConfigFile: join(dir, 'missing', 'gate-config.json'), accessPolicy: null, payloadGroups: NO_PAYLOAD_GROUPS });
    expect(() => source()).toThrow(/cannot read the compiled access policy/);
    writeFileSync(policyFile, '{"version":1}');
    const broken = createGroupSelectionSource({ gateConfigFile, accessPolicy: null, payloadGroups: NO_PAYLOAD_GROUPS });
    expect(() => broken()).toThrow(/neither a policy nor "off"/);
  });

  test('without GATE_CONFIG_FILE: the start-up policy, or none', () => {
    expect(createGroupSelectionSource({ gateConfigFile: null, accessPolicy: null, payloadGroups: NO_PAYLOAD_GROUPS })().policyGroups.size).toBe(0);
  });
});

describe('policyGroupNames with apps', () => {
  test('adds the groups the apps\' rules name: one session serves every app', () => {
    const policy = compiled({
      default: 'allow',
      rules: [{ id: 'ops', path: { prefix: '/ops' }, priority: 10, decision: 'allow', conditions: { groups: ['Ops'] } }],
      apps: {
        finance: { default: 'deny', rules: [{ id: 'reports', path: { prefix: '/reports' }, priority: 10, decision: 'allow', conditions: { groups: ['Finance'] } }] },
        hr: { default: 'deny', rules: [{ id: 'by-claim', path: { prefix: '/' }, priority: 10, decision: 'allow', conditions: { claims: { groups: ['HR'] } } }] },
      },
    });
    expect([...policyGroupNames(policy)].sort()).toEqual(['Finance', 'HR', 'Ops']);
  });
});
