/**
 * What a new password must be, wherever one is set (users CLI `add` and `passwd`): long enough, and
 * not one of the most common passwords. OWASP ASVS 4.0 V2.1.1 (at least 12 characters; NIST SP
 * 800-63B's floor is 8) and V2.1.7 (refuse breached and common passwords). No composition rules
 * (V2.1.9 forbids them). Existing passwords are not checked at sign-in: the rules apply when one is set.
 *
 * The common-password list is zxcvbn-ts's (npm @zxcvbn-ts/language-common, "passwords-common": about
 * 49,000 entries from real leaks), a dependency rather than a copy, so it is updated with the package.
 */
import { dictionary } from '@zxcvbn-ts/language-common';
import { usernameKey } from '../security/username-key.js';
import type { EnvIssue } from './policy-from-env.js';

export const DEFAULT_PASSWORD_MIN_LENGTH = 12;
/** NIST SP 800-63B: never fewer than 8 characters. */
export const PASSWORD_MIN_LENGTH_FLOOR = 8;
export const PASSWORD_MIN_LENGTH_CEILING = 64;

export interface NewPasswordRules {
  /** In Unicode code points, the way a user counts characters (NIST SP 800-63B 5.1.1.2). */
  minLength: number;
}

let commonPasswords: Set<string> | undefined;

/** Lower-cased, so `Password1` is as refused as `password1`. Built on first use (about 50 ms). */
function commonPasswordSet(): Set<string> {
  commonPasswords ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return commonPasswords;
}

/** How many passwords the common list holds (for messages and tests). */
export function commonPasswordCount(): number {
  return commonPasswordSet().size;
}

/**
 * Null when `password` may be set for `username`, else the reason, as one sentence for the admin.
 * Not checked: breach databases beyond the bundled list, similarity to other account data than the
 * username.
 */
export function newPasswordProblem(password: string, username: string, rules: NewPasswordRules): string | null {
  const length = [...password].length;
  if (length < rules.minLength) {
    return `password is too short (${length} characters): use at least ${rules.minLength} (PASSWORD_MIN_LENGTH); a few unrelated words make a long password easy to remember`;
  }
  if (commonPasswordSet().has(password.toLowerCase())) {
    return 'password is one of the most commonly used passwords, which attackers try first: choose another';
  }
  if (usernameKey(password) === usernameKey(username)) return 'password must not be the username';
  return null;
}

/** Reads PASSWORD_MIN_LENGTH (integer from 8 to 64, default 12; unset or empty means the default). */
export function newPasswordRulesFromEnv(env: Record<string, string | undefined>): { ok: true; rules: NewPasswordRules } | { ok: false; issues: EnvIssue[] } {
  const text = env.PASSWORD_MIN_LENGTH?.trim() ?? '';
  if (text === '') return { ok: true, rules: { minLength: DEFAULT_PASSWORD_MIN_LENGTH } };
  const value = /^[0-9]{1,3}$/.test(text) ? Number(text) : NaN;
  if (value >= PASSWORD_MIN_LENGTH_FLOOR && value <= PASSWORD_MIN_LENGTH_CEILING) return { ok: true, rules: { minLength: value } };
  return {
    ok: false,
    issues: [
      {
        variable: 'PASSWORD_MIN_LENGTH',
        rule: `must be an integer from ${PASSWORD_MIN_LENGTH_FLOOR} (the least any standard allows) to ${PASSWORD_MIN_LENGTH_CEILING}`,
        received: text,
      },
    ],
  };
}
