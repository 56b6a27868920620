/**
 * Writes the two files the gate loads: GATE_CONFIG_FILE (keys, cookie name, IP binding, ...) and,
 * next to it, the compiled access policy (policy.json). The auth service calls this at start-up;
 * `npm run gate-files` (cli/gate-files.ts) calls it alone, which is how a Kubernetes nginx pod gets
 * them (deploy/kubernetes: an init container of the auth image, same Secret and settings).
 */
import type { Logger } from 'pino';
import type { AuthConfig } from '../config.js';
import { gatePolicyFor, policyRuntimeFile } from '../policy/policy-runtime.js';
import { buildGateConfig, deriveKeyId, endedPreviousKeys, writeGateConfig } from './gate-config.js';

/** Writes GATE_CONFIG_FILE and, next to it, the compiled access policy (runtime/policy.json). */
export async function writeGateFiles(config: AuthConfig, logger: Logger, nowMs: number): Promise<void> {
  if (config.gateConfigFile === null) return;
  const now = Math.floor(nowMs / 1000);
  for (const ended of endedPreviousKeys(config, now)) {
    // Never the secret: its key id (a one-way hash) and when it retired.
    logger.info(
      { event: 'previous_key_ended', kid: deriveKeyId(ended.secret), retired_at: new Date(ended.retiredAt * 1000).toISOString() },
      'a JWT_PREVIOUS_SECRETS key is past its retirement time: left out of the gate config (its sessions are refused); remove it from JWT_PREVIOUS_SECRETS',
    );
  }
  await writeGateConfig(config.gateConfigFile, buildGateConfig(config, now));
  logger.info({ event: 'gate_config_written', file: config.gateConfigFile }, 'gate config written');
  const policyFile = policyRuntimeFile(config.gateConfigFile);
  const ap = config.accessPolicy;
  await writeGateConfig(policyFile, gatePolicyFor(ap === null ? null : ap.compiled));
  if (ap === null) {
    logger.info({ event: 'policy_written', file: policyFile, policy: 'off' }, 'no POLICY_FILE: every valid session is allowed');
  } else {
    for (const w of ap.warnings) logger.warn({ event: 'policy_warning', source: ap.file }, w);
    logger.info({ event: 'policy_written', file: policyFile, source: ap.file, rules: ap.compiled.rules.length, default: ap.compiled.default }, 'access policy compiled');
  }
}
