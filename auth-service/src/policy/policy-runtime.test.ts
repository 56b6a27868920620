import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { decideAccess, gatePolicyProblem, isPolicyOff } from '../../../njs/src/core/policy.js';
import { COMPILED_POLICY_VERSION } from '../../../njs/src/core/policy-contract.js';
import type { CompiledPolicy } from '../../../njs/src/core/policy-contract.js';
import { HORIZON_FUTURE_SECONDS, HORIZON_PAST_SECONDS } from './compile-policy.js';
import { POLICY_OFF, POLICY_RUNTIME_BASENAME, compilePolicyFile, gatePolicyFor, policyRuntimeFile } from './policy-runtime.js';

const NOW = Date.UTC(2026, 0, 15) / 1000; // frozen clock
const SHIPPED_POLICY = fileURLToPath(new URL('../../../nginx/policy.yaml', import.meta.url));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'policy-runtime-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function compiledOf(file: string, now = NOW): { compiled: CompiledPolicy; warnings: string[] } {
  const r = compilePolicyFile(file, now);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r;
}

function errorsOf(file: string): string[] {
  const r = compilePolicyFile(file, NOW);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

const kirk = { sub: 'u1', username: 'kirk', groups: ['Federation'] };
const mccoy = { sub: 'u2', username: 'mccoy', groups: ['Medical'] };

describe('compilePolicyFile', () => {
  it('compiles the shipped nginx/policy.yaml into the seed decisions', () => {
    const r = compiledOf(SHIPPED_POLICY);
    expect(r.warnings).toEqual([]);
    const decide = (p: string, claims: object | null) =>
      decideAccess(r.compiled, { method: 'GET', path: p, claims: claims as { [claim: string]: unknown } | null, remoteAddr: '192.0.2.1', now: NOW });
    expect(decide('/federation', kirk)).toMatchObject({ decision: 'allow', rule: 'federation-members' });
    expect(decide('/federation/x', mccoy)).toMatchObject({ decision: 'deny', rule: 'federation-others' });
    expect(decide('/healthz', null)).toMatchObject({ decision: 'allow', rule: 'healthz', public: true });
    expect(decide('/elsewhere', mccoy)).toMatchObject({ decision: 'allow', rule: 'default' });
  });

  it('reads YAML and JSON (any case of the extension) to the same compiled policy', () => {
    const source = { default: 'deny', rules: [{ id: 'ops', path: { prefix: '/ops' }, priority: 1, decision: 'allow', conditions: { users: ['kirk'] } }] };
    const yaml = write('same.YML', 'default: deny\nrules:\n  - { id: ops, path: { prefix: /ops }, priority: 1, decision: allow, conditions: { users: [kirk] } }\n');
    const json = write('same.json', JSON.stringify(source));
    expect(compiledOf(yaml).compiled).toEqual(compiledOf(json).compiled);
  });

  it('anchors the zone horizon at the given time', () => {
    const file = write('clock.json', JSON.stringify({ default: 'deny', rules: [] }));
    const c = compiledOf(file, NOW + 0.9).compiled;
    expect([c.compiledAt, c.horizonStart, c.horizonEnd]).toEqual([NOW, NOW - HORIZON_PAST_SECONDS, NOW + HORIZON_FUTURE_SECONDS]);
  });

  it("passes on the compiler's warnings (no default)", () => {
    const file = write('no-default.yaml', 'rules: []\n');
    expect(compiledOf(file).warnings).toEqual([expect.stringMatching(/no 'default' given/)]);
  });

  it('prefixes every compile error with the file name and reports them all', () => {
    const file = write(
      'broken.yaml',
      [
        'default: allow',
        'rules:',
        '  - { id: a, path: { prefix: "/a;b" }, priority: 1, decision: deny }',
        '  - { id: b, path: { exact: /b }, priority: 1, decision: maybe }',
        '  - { id: c, path: { prefix: /c }, priority: 1, decision: allow, conditions: { time: { from: "08:00", to: "09:00", timeZone: Mars/Olympus } } }',
      ].join('\n'),
    );
    expect(errorsOf(file)).toEqual([
      expect.stringMatching(/rules\[0\] \(a\)\.path\.prefix: must not contain/),
      expect.stringMatching(/rules\[1\] \(b\)\.decision/),
      expect.stringMatching(/rules\[2\] \(c\)\.conditions\.time\.timeZone: unknown IANA time zone/),
    ]);
    for (const e of errorsOf(file)) expect(e.startsWith(`${file}: `)).toBe(true);
  });

  it.each([
    ['a missing file', 'missing.yaml', null, /cannot read the policy file \(no such file\)$/],
    ['unparsable YAML', 'bad.yaml', 'rules: [ {\n', /cannot read the policy file \(.+\)$/],
    ['unparsable JSON', 'bad.json', '{"rules": ', /cannot read the policy file \(.+\)$/],
    ['an unknown extension', 'policy.txt', 'default: deny\n', /cannot read the policy file \(policy file must end in \.json, \.yaml or \.yml: .*policy\.txt\)$/],
  ])('reports %s as one error naming the file', (_name, name, text, message) => {
    const file = text === null ? path.join(dir, name) : write(name, text);
    const errors = errorsOf(file);
    expect(errors).toHaveLength(1);
    expect(errors[0].startsWith(`${file}: `)).toBe(true);
    expect(errors[0]).toMatch(message);
    // One line: the parser's multi-line excerpt would break the one-line-per-problem start-up report.
    expect(errors[0]).not.toContain('\n');
  });

  it('produces what the gate accepts as gate_policy', () => {
    const compiled = compiledOf(SHIPPED_POLICY).compiled;
    expect(gatePolicyProblem(JSON.parse(JSON.stringify(compiled)))).toBeNull();
    expect(isPolicyOff(compiled)).toBe(false);
  });
});

describe('POLICY_OFF and the runtime file', () => {
  it('is the "no policy" marker the gate accepts and recognises', () => {
    expect(POLICY_OFF).toEqual({ version: COMPILED_POLICY_VERSION, off: true });
    expect(gatePolicyProblem(JSON.parse(JSON.stringify(POLICY_OFF)))).toBeNull();
    expect(isPolicyOff(POLICY_OFF)).toBe(true);
  });

  it('gatePolicyFor gives the compiled policy, or POLICY_OFF for none', () => {
    const compiled = compiledOf(SHIPPED_POLICY).compiled;
    expect(gatePolicyFor(compiled)).toBe(compiled);
    expect(gatePolicyFor(null)).toBe(POLICY_OFF);
  });

  it.each([
    ['/etc/gateway/runtime/gate.json', '/etc/gateway/runtime/policy.json'],
    ['runtime/gate-config.json', 'runtime/policy.json'],
    ['gate.json', 'policy.json'],
  ])('puts the compiled policy for %s next to it (%s)', (gateConfig, expected) => {
    expect(POLICY_RUNTIME_BASENAME).toBe('policy.json');
    expect(policyRuntimeFile(gateConfig)).toBe(expected);
  });
});
