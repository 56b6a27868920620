/**
 * Shape check of the gate's runtime config (the `gate_config` object nginx preloads). The writer
 * of that JSON validates it properly; this cheap per-request check only makes a broken or missing
 * file fail closed (deny + error log) instead of, say, treating `"ipBinding": "false"` as true.
 */
import type { GateConfig } from './session-contract.js';

/**
 * Returns null when `value` has the GateConfig shape, else a short description of the first
 * problem (never a key or secret). Checked: cookieName a non-empty string; ipBinding a boolean;
 * leewaySeconds a finite number >= 0; loginPath a string starting with '/'; keys a non-null,
 * non-array object. Not checked: key strength, or that the header segments are well-formed.
 */
export function gateConfigProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'gate_config is not an object';
  const c = value as { [field: string]: unknown };
  if (typeof c.cookieName !== 'string' || c.cookieName === '') return 'cookieName must be a non-empty string';
  if (typeof c.ipBinding !== 'boolean') return 'ipBinding must be a boolean';
  const leeway = c.leewaySeconds;
  if (typeof leeway !== 'number' || !isFinite(leeway) || leeway < 0) return 'leewaySeconds must be a number >= 0';
  if (typeof c.loginPath !== 'string' || c.loginPath.charAt(0) !== '/') return "loginPath must start with '/'";
  if (typeof c.keys !== 'object' || c.keys === null || isPreloadedList(c.keys)) return 'keys must be an object';
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
