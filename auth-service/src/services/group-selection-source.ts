/**
 * The GroupSelection in force at sign-in: the group names of the compiled policy the gate runs now
 * (runtime/policy.json, next to GATE_CONFIG_FILE, which `make reload` and `npm run policy -- compile`
 * rewrite) plus PAYLOAD_GROUPS. Re-read when the file changes, so a policy edit + reload changes
 * which groups new sessions carry without restarting the auth service.
 */
import { readFileSync, statSync } from 'node:fs';
import type { GatePolicy } from '../../../njs/src/core/policy-contract.js';
import type { AuthConfig } from '../config.js';
import { POLICY_OFF, policyRuntimeFile } from '../policy/policy-runtime.js';
import { policyGroupNames, type GroupSelection } from './group-selection.js';

export type GroupSelectionSource = () => GroupSelection;

/**
 * Guaranteed: with GATE_CONFIG_FILE set, each call reflects the policy file as it is on disk (read
 * again only when its size, mtime or inode changed); without it, the policy compiled at start-up
 * (POLICY_FILE) or none. Throws when the file cannot be read or parsed: signing a session without
 * knowing which groups a deny rule names could let a user past it, so sign-in fails instead.
 * Not checked: that nginx has loaded the same file (a reload that nginx refused keeps the old one).
 */
export function createGroupSelectionSource(config: Pick<AuthConfig, 'gateConfigFile' | 'accessPolicy' | 'payloadGroups'>): GroupSelectionSource {
  const payload = config.payloadGroups;
  if (config.gateConfigFile === null) {
    const compiled = config.accessPolicy?.compiled ?? POLICY_OFF;
    const fixed: GroupSelection = { policyGroups: policyGroupNames(compiled), payload, policyApps: policyAppNameSet(compiled) };
    return () => fixed;
  }
  const file = policyRuntimeFile(config.gateConfigFile);
  let cachedKey = '';
  let cached: GroupSelection | undefined;
  return () => {
    let key: string;
    let policy: GatePolicy;
    try {
      const st = statSync(file);
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (cached !== undefined && key === cachedKey) return cached;
      policy = JSON.parse(readFileSync(file, 'utf8')) as GatePolicy;
    } catch (err) {
      throw new Error(`cannot read the compiled access policy ${file} to choose the session's groups`, { cause: err });
    }
    if (typeof policy !== 'object' || policy === null || (!('off' in policy) && !Array.isArray(policy.rules))) {
      throw new Error(`the compiled access policy ${file} is neither a policy nor "off"`);
    }
    cached = { policyGroups: policyGroupNames(policy), payload, policyApps: policyAppNameSet(policy) };
    cachedKey = key;
    return cached;
  };
}

/** The names of the policy's apps (none when the policy is off or has no `apps:`). */
function policyAppNameSet(policy: GatePolicy): ReadonlySet<string> {
  return new Set('off' in policy ? [] : Object.keys(policy.apps ?? {}));
}
