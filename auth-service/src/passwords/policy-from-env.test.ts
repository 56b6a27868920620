import { describe, expect, it } from '@jest/globals';
import { formatEnvIssue, passwordPolicyFromEnv } from './policy-from-env.js';

const ARGON2_DEFAULTS = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

describe('passwordPolicyFromEnv', () => {
  it.each([
    { name: 'nothing set gives the OWASP defaults', env: {}, algorithm: 'pbkdf2-sha512', iterations: 210000 },
    { name: 'empty values mean unset', env: { PASSWORD_HASH_ALGORITHM: '', PASSWORD_PBKDF2_ITERATIONS: '' }, algorithm: 'pbkdf2-sha512', iterations: 210000 },
    { name: 'argon2id is selectable', env: { PASSWORD_HASH_ALGORITHM: 'argon2id' }, algorithm: 'argon2id', iterations: 210000 },
    { name: 'iterations can be raised', env: { PASSWORD_PBKDF2_ITERATIONS: '600000' }, algorithm: 'pbkdf2-sha512', iterations: 600000 },
    { name: 'the lowest accepted iteration count', env: { PASSWORD_PBKDF2_ITERATIONS: '100000' }, algorithm: 'pbkdf2-sha512', iterations: 100000 },
    { name: 'surrounding spaces are ignored', env: { PASSWORD_HASH_ALGORITHM: ' argon2id ' }, algorithm: 'argon2id', iterations: 210000 },
  ])('accepts: $name', ({ env, algorithm, iterations }) => {
    expect(passwordPolicyFromEnv(env)).toEqual({
      ok: true,
      policy: { algorithm, pbkdf2Iterations: iterations, argon2: ARGON2_DEFAULTS },
    });
  });

  it.each([
    { name: 'an unknown algorithm', env: { PASSWORD_HASH_ALGORITHM: 'bcrypt' }, variable: 'PASSWORD_HASH_ALGORITHM' },
    { name: 'the passlib spelling of the algorithm', env: { PASSWORD_HASH_ALGORITHM: 'pbkdf2_sha512' }, variable: 'PASSWORD_HASH_ALGORITHM' },
    { name: 'a weak iteration count', env: { PASSWORD_PBKDF2_ITERATIONS: '99999' }, variable: 'PASSWORD_PBKDF2_ITERATIONS' },
    { name: 'a fractional iteration count', env: { PASSWORD_PBKDF2_ITERATIONS: '210000.5' }, variable: 'PASSWORD_PBKDF2_ITERATIONS' },
    { name: 'an exponent', env: { PASSWORD_PBKDF2_ITERATIONS: '1e6' }, variable: 'PASSWORD_PBKDF2_ITERATIONS' },
    { name: 'a negative count', env: { PASSWORD_PBKDF2_ITERATIONS: '-210000' }, variable: 'PASSWORD_PBKDF2_ITERATIONS' },
    { name: 'more than crypto.pbkdf2 accepts', env: { PASSWORD_PBKDF2_ITERATIONS: '2147483648' }, variable: 'PASSWORD_PBKDF2_ITERATIONS' },
  ])('rejects $name', ({ env, variable }) => {
    const result = passwordPolicyFromEnv(env);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.issues.map((i) => i.variable)).toEqual([variable]);
  });

  it('reports every bad variable at once, with the rule and the value received', () => {
    const result = passwordPolicyFromEnv({ PASSWORD_HASH_ALGORITHM: 'md5', PASSWORD_PBKDF2_ITERATIONS: '5' });
    expect(!result.ok && result.issues.map(formatEnvIssue)).toEqual([
      'PASSWORD_HASH_ALGORITHM must be one of pbkdf2-sha512, argon2id (received "md5")',
      'PASSWORD_PBKDF2_ITERATIONS must be an integer from 100000 to 2147483647 (received "5")',
    ]);
  });
});
