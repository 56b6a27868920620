/**
 * The gate's runtime config (GateConfig in the shared contract), derived from the auth service's
 * own config so that the two can never disagree about keys, cookie name or IP binding. nginx
 * loads the file once per config load with `js_preload_object`.
 */
import crypto from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { GateConfig } from '../../../njs/src/core/session-contract.js';
import type { GatePolicy } from '../../../njs/src/core/policy-contract.js';
import { liveSecrets, maxSessionAgeSeconds, type AuthConfig, type PreviousKey } from '../config.js';
import { headerSegmentFor } from './session-token.js';
import { tableauGateKeys } from './tableau-token.js';

export { deriveKeyId, headerSegmentFor } from './session-token.js';

export const LOGIN_PATH = '/login';

/** Previous keys whose grace period had ended at `nowSeconds`: left out of the gate config. */
export function endedPreviousKeys(config: Pick<AuthConfig, 'jwt'>, nowSeconds: number): PreviousKey[] {
  return config.jwt.previousKeys.filter((k) => !(nowSeconds < k.retiredAt));
}

/**
 * Keys are indexed by the exact JWT header segment each secret signs with: the active secret and
 * every previous one still in its grace period at `nowSeconds` (so sessions signed before a
 * rotation stay valid). Every previous key, ended or not, is listed in `keyRetiredAt` with its
 * retirement time, so the gate refuses its tokens from then on (`token-key-retired`), also after
 * the secret of an ended key was left out here. With Tableau configured, `tableau` carries Tableau's
 * origin and the AES keys (derived from the same live secrets) that open the sealed Tableau token
 * of a session, for the `/api/` pass-through. With ASSERTION_KEY_FILE, `assertion` names the
 * assertion cookies (njs/src/core/assertion.ts).
 */
export function buildGateConfig(
  config: Pick<AuthConfig, 'jwt' | 'session' | 'sessionLifetimes'> & Partial<Pick<AuthConfig, 'tableau' | 'assertion'>>,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): GateConfig {
  const keys: GateConfig['keys'] = {};
  const keyRetiredAt: GateConfig['keyRetiredAt'] = {};
  const secrets = [config.jwt.secret, ...liveSecrets(config.jwt.previousKeys, nowSeconds)];
  for (const secret of secrets) {
    keys[headerSegmentFor(secret)] = secret;
  }
  for (const previous of config.jwt.previousKeys) {
    keyRetiredAt[headerSegmentFor(previous.secret)] = previous.retiredAt;
  }
  const tableauUrl = config.tableau?.url;
  const tableau = tableauUrl === undefined ? {} : { tableau: { origin: new URL(tableauUrl).origin, host: new URL(tableauUrl).host, keys: tableauGateKeys(secrets) } };
  // With ASSERTION_KEY_FILE, the gate needs a bound assertion cookie for every session request.
  const assertion = config.assertion ? { assertion: { cookieName: config.assertion.cookieName } } : {};
  return {
    ...tableau,
    ...assertion,
    keys,
    keyRetiredAt,
    cookieName: config.session.cookieName,
    ipBinding: config.session.ipBinding,
    leewaySeconds: config.session.leewaySeconds,
    // Counted from the token's `iat`, which renewal keeps: no chain of renewals outlives it.
    maxSessionSeconds: maxSessionAgeSeconds(config),
    loginPath: LOGIN_PATH,
  };
}

/**
 * Writes `gateConfig` (or the compiled policy, runtime/policy.json) as JSON to `filePath` atomically: a new temporary file in the same directory
 * (mode 0600, it holds the secrets), flushed to disk, then renamed over the target. A reader (an
 * nginx reload) sees either the old file or the complete new one, never a partial write.
 * Not done: creating the directory; changing ownership (nginx's master reads it as root).
 */
export async function writeGateConfig(filePath: string, gateConfig: GateConfig | GatePolicy): Promise<void> {
  await writeTextAtomically(filePath, `${JSON.stringify(gateConfig, null, 2)}\n`, 0o600);
}

/** Writes `text` to `filePath` atomically (temporary file, flushed, renamed over), with `mode`. */
export async function writeTextAtomically(filePath: string, text: string, mode: number): Promise<void> {
  const dir = path.dirname(filePath);
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      // open()'s mode is filtered by the umask; pages must be readable by nginx's workers.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, filePath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
