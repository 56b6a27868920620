/**
 * The compiled access policy as the gate loads it: `runtime/policy.json`, next to the gate config,
 * preloaded by nginx as `gate_policy` (nginx/gate.conf). Written by the auth service at start-up from
 * POLICY_FILE, and by `make reload` / `npm run policy -- compile` when the policy changes.
 */
import path from 'node:path';
import { COMPILED_POLICY_VERSION } from '../../../njs/src/core/policy-contract.js';
import type { CompiledPolicy, GatePolicy, PolicyOff } from '../../../njs/src/core/policy-contract.js';
import { compilePolicy, lintCompiledPolicy, loadPolicyFile } from './compile-policy.js';

/** File name of the compiled policy, in the same directory as the gate config. */
export const POLICY_RUNTIME_BASENAME = 'policy.json';

/** What the gate loads when no POLICY_FILE is set: every valid session is allowed, as before policies. */
export const POLICY_OFF: PolicyOff = { version: COMPILED_POLICY_VERSION, off: true };

/** Path of the compiled policy that goes with a gate config file (same directory). */
export function policyRuntimeFile(gateConfigFile: string): string {
  return path.join(path.dirname(gateConfigFile), POLICY_RUNTIME_BASENAME);
}

export type PolicyFileResult = { ok: true; compiled: CompiledPolicy; warnings: string[] } | { ok: false; errors: string[] };

/**
 * Reads and compiles a policy file (.yaml, .yml or .json) as of `nowSeconds`. Every problem is
 * returned at once, each prefixed with the file name; an unreadable or unparsable file is one error.
 * Warnings are the compiler's (e.g. no `default`); a freshly compiled policy's time-zone horizon is
 * five years away, so lintCompiledPolicy's horizon warning only matters for an old compiled file.
 */
export function compilePolicyFile(file: string, nowSeconds: number): PolicyFileResult {
  let source: unknown;
  try {
    source = loadPolicyFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.message.split('\n')[0];
    return { ok: false, errors: [`${file}: cannot read the policy file (${why})`] };
  }
  const result = compilePolicy(source, { now: nowSeconds });
  if (!result.ok) return { ok: false, errors: result.errors.map((e) => `${file}: ${e}`) };
  return { ok: true, compiled: result.compiled, warnings: [...result.warnings, ...lintCompiledPolicy(result.compiled, nowSeconds)] };
}

/** The gate_policy object for a compiled policy, or POLICY_OFF. */
export function gatePolicyFor(compiled: CompiledPolicy | null): GatePolicy {
  return compiled ?? POLICY_OFF;
}
