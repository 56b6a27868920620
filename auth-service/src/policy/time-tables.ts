/**
 * Time-zone tables for `time` conditions: njs has no Intl, so the compiler ships each zone's UTC
 * offsets over a horizon, and warns when a compiled policy's horizon runs out.
 */
import type { CompiledPolicy, CompiledZone } from '../../../njs/src/core/policy-contract.js';

/** Zone tables cover [now - 1 year, now + 5 years); `lintCompiledPolicy` warns in the last 180 days. */
export const HORIZON_PAST_SECONDS = 366 * 86400;
export const HORIZON_FUTURE_SECONDS = 5 * 365 * 86400;
export const HORIZON_WARN_SECONDS = 180 * 86400;

/** Warnings about a compiled policy at time `now`: mainly a zone horizon that is running out. */
export function lintCompiledPolicy(compiled: CompiledPolicy, now: number): string[] {
  const out: string[] = [];
  const sections = [compiled, ...Object.values(compiled.apps ?? {})];
  if (sections.every((s) => Object.keys(s.zones).length === 0)) return out;
  if (now >= compiled.horizonEnd) {
    out.push('policy: the time-zone tables have run out; time conditions now deny. Recompile the policy and reload nginx');
  } else if (compiled.horizonEnd - now < HORIZON_WARN_SECONDS) {
    const days = Math.floor((compiled.horizonEnd - now) / 86400);
    out.push(`policy: the time-zone tables run out in ${days} days; recompile the policy and reload nginx`);
  }
  return out;
}

/** Offset of `zone` from UTC at `t` (epoch seconds), in seconds, via Intl. */
function offsetAt(fmt: Intl.DateTimeFormat, t: number): number {
  const parts: { [k: string]: number } = {};
  for (const p of fmt.formatToParts(new Date(t * 1000))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) / 1000;
  return asUtc - t;
}

/**
 * UTC-offset transitions of `zone` in [start, end): sampled daily, each change located to the second
 * by bisection. Assumes at most one transition per day, which holds for every current IANA zone.
 */
export function buildZoneTable(zone: string, start: number, end: number): CompiledZone {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const starts = [start];
  const offsets = [offsetAt(fmt, start)];
  let t = start;
  let current = offsets[0];
  while (t < end) {
    const next = Math.min(t + 86400, end);
    const o = offsetAt(fmt, next);
    if (o !== current) {
      let lo = t;
      let hi = next; // offset(lo) === current, offset(hi) !== current
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(fmt, mid) === current) lo = mid;
        else hi = mid;
      }
      starts.push(hi);
      offsets.push(o);
      current = o;
    }
    t = next;
  }
  return { starts, offsets };
}
