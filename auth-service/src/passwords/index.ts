export {
  createPasswordHasher,
  DEFAULT_PASSWORD_POLICY,
  PASSWORD_ALGORITHMS,
  type Argon2Cost,
  type PasswordAlgorithm,
  type PasswordHasher,
  type PasswordPolicy,
} from './password-hasher.js';
export { formatEnvIssue, passwordPolicyFromEnv, type EnvIssue, type PasswordPolicyResult } from './policy-from-env.js';
export {
  commonPasswordCount,
  DEFAULT_PASSWORD_MIN_LENGTH,
  newPasswordProblem,
  newPasswordRulesFromEnv,
  type NewPasswordRules,
} from './new-password-rules.js';
export { createHashingLimiter, HASHING_BUSY_MESSAGE, limitPasswordHashing, type HashingLimiter, type HashingLimits } from './hashing-limiter.js';
export { startHashingThreads, type HashingThreads } from './hashing-threads.js';
