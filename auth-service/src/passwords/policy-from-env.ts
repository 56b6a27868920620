import { DEFAULT_PASSWORD_POLICY, PASSWORD_ALGORITHMS, type PasswordAlgorithm, type PasswordPolicy } from './password-hasher.js';

/** One rejected variable, in the shape start-up config errors are printed in. */
export interface EnvIssue {
  variable: string;
  rule: string;
  received: string;
}

export type PasswordPolicyResult = { ok: true; policy: PasswordPolicy } | { ok: false; issues: EnvIssue[] };

export const MIN_PBKDF2_ITERATIONS = 100_000;
/** Node's crypto.pbkdf2 refuses more. */
export const MAX_PBKDF2_ITERATIONS = 2_147_483_647;

/**
 * Reads PASSWORD_HASH_ALGORITHM (pbkdf2-sha512 | argon2id, default pbkdf2-sha512) and
 * PASSWORD_PBKDF2_ITERATIONS (integer from 100000, default 210000). Unset or empty means the default.
 * Collects every issue instead of stopping at the first. argon2id costs are always the OWASP defaults.
 */
export function passwordPolicyFromEnv(env: Record<string, string | undefined>): PasswordPolicyResult {
  const issues: EnvIssue[] = [];

  const algorithmText = env.PASSWORD_HASH_ALGORITHM?.trim() ?? '';
  let algorithm: PasswordAlgorithm = DEFAULT_PASSWORD_POLICY.algorithm;
  if (algorithmText !== '') {
    if ((PASSWORD_ALGORITHMS as readonly string[]).includes(algorithmText)) {
      algorithm = algorithmText as PasswordAlgorithm;
    } else {
      issues.push({ variable: 'PASSWORD_HASH_ALGORITHM', rule: `must be one of ${PASSWORD_ALGORITHMS.join(', ')}`, received: algorithmText });
    }
  }

  const iterationsText = env.PASSWORD_PBKDF2_ITERATIONS?.trim() ?? '';
  let pbkdf2Iterations = DEFAULT_PASSWORD_POLICY.pbkdf2Iterations;
  if (iterationsText !== '') {
    const value = /^[0-9]+$/.test(iterationsText) ? Number(iterationsText) : NaN;
    if (Number.isSafeInteger(value) && value >= MIN_PBKDF2_ITERATIONS && value <= MAX_PBKDF2_ITERATIONS) {
      pbkdf2Iterations = value;
    } else {
      issues.push({
        variable: 'PASSWORD_PBKDF2_ITERATIONS',
        rule: `must be an integer from ${MIN_PBKDF2_ITERATIONS} to ${MAX_PBKDF2_ITERATIONS}`,
        received: iterationsText,
      });
    }
  }

  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, policy: { algorithm, pbkdf2Iterations, argon2: { ...DEFAULT_PASSWORD_POLICY.argon2 } } };
}

/** `PASSWORD_PBKDF2_ITERATIONS must be an integer from 100000 to 2147483647 (received "5")`. */
export function formatEnvIssue(issue: EnvIssue): string {
  return `${issue.variable} ${issue.rule} (received ${JSON.stringify(issue.received)})`;
}
