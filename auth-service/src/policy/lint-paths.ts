/**
 * Checks of a rule's path: exact and prefix paths must be something the gate can ever see (nginx's
 * normalised $uri after policyPath), and regex rules must compile and must not backtrack
 * catastrophically (njs runs them with a backtracking engine on every request that reaches them).
 */
import { isSafePattern } from 'redos-detector';
import { foldCase } from '../../../njs/src/core/request-path.js';

/** Budget of the ReDoS analysis per pattern; a pattern it cannot clear in time is refused. */
const REDOS_TIMEOUT_MS = 5000;

/** Problems with an exact or prefix rule path (as written), appended to `errors`. */
export function checkPath(where: string, p: string, errors: string[]): void {
  if (!p.startsWith('/')) errors.push(`${where}: must start with '/'`);
  if (/[?#%;\\\u0000-\u001f\u007f]/.test(p)) {
    errors.push(`${where}: must not contain '?', '#', '%', ';', '\\' or control characters (rules match nginx's decoded, normalised $uri, with ;params cut)`);
  }
  if (/[\u0130\u0131\u017f\u212a\ufffd]/.test(p)) {
    errors.push(`${where}: must not contain \u0130, \u0131, \u017f, the Kelvin sign or U+FFFD: the gate refuses such paths (400) because .NET and Java read them as ASCII letters`);
  }
  const segments = p.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '.' || s === '..') errors.push(`${where}: '.' and '..' segments never occur in a normalised path`);
    if (s === '' && i < segments.length - 1) errors.push(`${where}: '//' never occurs in a normalised path`);
  }
}

/** A rule path as the gate compares it: case-folded like request paths (foldCase). */
export function foldRulePath(p: string): string {
  return foldCase(p);
}

/**
 * Problems with a regex rule's pattern: syntax (as JavaScript reads it with the `i` flag) and
 * catastrophic backtracking, judged by redos-detector (pure JavaScript, no native binary or
 * download). Such a pattern, e.g. `^/reports/([a-z0-9]+-?)+/archive$`, costs a gate worker a
 * fraction of a second per crafted request; the policy is refused rather than shipped.
 * Not checked: that njs's PCRE reads exotic syntax the same way as JavaScript.
 */
export function checkRegex(where: string, source: string, errors: string[]): void {
  try {
    new RegExp(source, 'i');
  } catch (e) {
    errors.push(`${where}: invalid regular expression (${(e as Error).message})`);
    return;
  }
  let verdict: ReturnType<typeof isSafePattern>;
  try {
    verdict = isSafePattern(source, { caseInsensitive: true, timeout: REDOS_TIMEOUT_MS });
  } catch (e) {
    errors.push(`${where}: the backtracking check cannot read this pattern (${(e as Error).message}); simplify it`);
    return;
  }
  if (verdict.safe) return;
  const why = verdict.error === 'timedOut' || verdict.error === 'hitMaxSteps' ? 'too complex to prove safe' : 'can backtrack catastrophically';
  errors.push(
    `${where}: slow regular expression refused: ${why} (nested or adjacent repetitions that can match the same text, ` +
      "e.g. '([a-z0-9]+-?)+' or '.*/x/.*'), so a crafted path makes the gate try exponentially or polynomially many " +
      "ways to match. Make each repetition unambiguous, e.g. '[a-z0-9-]+' instead of '([a-z0-9]+-?)+', '[^/]*' " +
      "instead of '.*' between slashes",
  );
}
