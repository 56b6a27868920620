/**
 * Shape check of the gate's runtime config (the `gate_config` object nginx preloads). The writer
 * of that JSON validates it properly; this cheap per-request check only makes a broken or missing
 * file fail closed (deny + error log) instead of, say, treating `"ipBinding": false` as a mode.
 */
import type { GateConfig } from './session-contract.js';

/**
 * Returns null when `value` has the GateConfig shape, else a short description of the first
 * problem (never a key or secret). Checked: cookieName a non-empty string; ipBinding one of
 * 'exact', 'subnet', 'off'; leewaySeconds a number in [0, 1e9]; maxSessionSeconds a number in
 * (0, 1e9]; loginPath a string starting with '/'; keys a non-null, non-array object; keyRetiredAt a
 * non-null object (an array is not refused: it lists no key, so nothing retires).
 * Not checked: key strength, that the header segments are well-formed, that retirement times are
 * numbers (a non-number refuses the tokens of that key: see verifySessionToken).
 */
export function gateConfigProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'gate_config is not an object';
  const c = value as { [field: string]: unknown };
  if (typeof c.cookieName !== 'string' || c.cookieName === '') return 'cookieName must be a non-empty string';
  const binding = c.ipBinding;
  if (binding !== 'exact' && binding !== 'subnet' && binding !== 'off') return 'ipBinding must be exact, subnet or off';
  // Compares rather than isFinite()/charAt(): this runs on every request, and calls cost in njs
  // (NaN fails every compare; the upper bounds keep out Infinity).
  const leeway = c.leewaySeconds;
  if (typeof leeway !== 'number' || !(leeway >= 0 && leeway <= 1e9)) return 'leewaySeconds must be a number >= 0';
  const max = c.maxSessionSeconds;
  if (typeof max !== 'number' || !(max > 0 && max <= 1e9)) return 'maxSessionSeconds must be a number from 1 to 1e9';
  const loginPath = c.loginPath;
  if (typeof loginPath !== 'string' || loginPath[0] !== '/') return "loginPath must start with '/'";
  if (typeof c.keys !== 'object' || c.keys === null || isPreloadedList(c.keys)) return 'keys must be an object';
  const retired = c.keyRetiredAt;
  if (typeof retired !== 'object' || retired === null) return 'keyRetiredAt must be an object';
  return null;
}

/** Type guard form of gateConfigProblem. */
export function isGateConfig(value: unknown): value is GateConfig {
  return gateConfigProblem(value) === null;
}

/**
 * Shape test for arrays in nginx's preloaded objects (js_preload_object), which have no prototype
 * chain, so `join` cannot tell them apart (isJsonArray). `Array.isArray` would, but costs ~2,500 CPU
 * instructions per request in njs 0.7.9; the files are written by the auth service, so a numeric
 * `length` is the array sign here (no key of an object the gate reads is named `length`).
 */
export function isPreloadedList(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { length?: unknown }).length === 'number';
}
