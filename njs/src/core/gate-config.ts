/**
 * Shape check of the gate's runtime config (the `gate_config` object nginx preloads). The writer
 * of that JSON validates it properly; this cheap per-request check only makes a broken or missing
 * file fail closed (deny + error log) instead of, say, treating `"ipBinding": false` as a mode.
 */
import type { GateConfig } from './session-contract.js';

/**
 * Returns null when `value` has the GateConfig shape, else a short description of the first
 * problem (never a key or secret). Checked: cookieName a non-empty string; ipBinding one of
 * 'exact', 'subnet', 'off'; leewaySeconds a finite number >= 0; maxSessionSeconds a finite number
 * > 0; loginPath a string starting with '/'; keys and keyRetiredAt non-null, non-array objects.
 * Not checked: key strength, that the header segments are well-formed, that retirement times are
 * numbers (a non-number refuses the tokens of that key: see verifySessionToken).
 */
export function gateConfigProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'gate_config is not an object';
  const c = value as { [field: string]: unknown };
  if (typeof c.cookieName !== 'string' || c.cookieName === '') return 'cookieName must be a non-empty string';
  const binding = c.ipBinding;
  if (binding !== 'exact' && binding !== 'subnet' && binding !== 'off') return 'ipBinding must be exact, subnet or off';
  const leeway = c.leewaySeconds;
  if (typeof leeway !== 'number' || !isFinite(leeway) || leeway < 0) return 'leewaySeconds must be a number >= 0';
  const max = c.maxSessionSeconds;
  if (typeof max !== 'number' || !isFinite(max) || max <= 0) return 'maxSessionSeconds must be a number > 0';
  if (typeof c.loginPath !== 'string' || c.loginPath.charAt(0) !== '/') return "loginPath must start with '/'";
  if (typeof c.keys !== 'object' || c.keys === null || Array.isArray(c.keys)) return 'keys must be an object';
  const retired = c.keyRetiredAt;
  if (typeof retired !== 'object' || retired === null || Array.isArray(retired)) return 'keyRetiredAt must be an object';
  return null;
}

/** Type guard form of gateConfigProblem. */
export function isGateConfig(value: unknown): value is GateConfig {
  return gateConfigProblem(value) === null;
}
