/**
 * What bench/run.ts, bench/renewal.ts and bench/login-storm.ts share: the settings from the environment, one wrk run with
 * the CPU the server processes spent during it, and the median of the rounds.
 * Env: BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const duration = Number(process.env.BENCH_DURATION ?? 5);
export const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
export const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

export interface Sample {
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Responses wrk counted. */
  requests: number;
  /** CPU time of every measured process per request, µs. */
  cpuUs: number;
  /** The same, per group of processes (the keys of runWrk's `cpu`). */
  cpuUsBy: Record<string, number>;
}

export interface WrkTarget {
  port: number;
  path: string;
  /** Sent with every request, unless the script sets its own. */
  headers?: Record<string, string>;
  /** A wrk Lua script (-s), e.g. one choosing a cookie per request. */
  script?: string;
  /** Arguments for the script's init(args) (after `--` on wrk's command line). */
  scriptArgs?: string[];
  /** Open connections (default BENCH_CONNECTIONS); wrk runs min(2, connections) threads. */
  connections?: number;
}

/** The processes of one group, asked before and again after the run (a pool may open connections meanwhile). */
export type PidSource = () => number[];

const CLOCK_TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of `pid` in clock ticks, all its threads (0 once it is gone). */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The children of `parent` now (for nginx's master: its workers). */
export function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/**
 * Runs wrk (-t2, BENCH_CONNECTIONS unless the target says, --latency) for `seconds` against `target` and counts the CPU
 * of each group in `cpu` meanwhile. Throws on any 4xx/5xx answer. Not counted: wrk itself, and a
 * process that ended before the run did (its ticks are gone with it).
 */
export function runWrk(target: WrkTarget, cpu: Record<string, PidSource>, seconds = duration): Sample {
  const before = new Map<string, Map<number, number>>();
  for (const [group, pids] of Object.entries(cpu)) before.set(group, new Map(pids().map((pid) => [pid, cpuTicks(pid)])));
  const headers = Object.entries(target.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const script = target.script === undefined ? [] : ['-s', target.script];
  const conns = target.connections ?? connections;
  const res = spawnSync('wrk', [`-t${Math.min(2, conns)}`, `-c${conns}`, `-d${seconds}s`, '--latency', ...script, ...headers, `http://127.0.0.1:${target.port}${target.path}`, '--', ...(target.scriptArgs ?? [])], {
    encoding: 'utf8',
  });
  const cpuUsBy: Record<string, number> = {};
  let cpuSeconds = 0;
  for (const [group, pids] of Object.entries(cpu)) {
    const start = before.get(group)!;
    let ticks = 0;
    for (const pid of new Set([...start.keys(), ...pids()])) ticks += Math.max(cpuTicks(pid) - (start.get(pid) ?? 0), 0);
    cpuUsBy[group] = ticks / CLOCK_TICKS_PER_SECOND;
    cpuSeconds += cpuUsBy[group];
  }
  if (res.status !== 0) throw new Error(`wrk failed: ${res.stderr || res.error}`);
  const out = res.stdout;
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`scenario on port ${target.port} returned errors:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const percentile = (p: number): number => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) throw new Error(`cannot parse wrk output:\n${out}`);
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  if (!rps || !requests) throw new Error(`cannot parse wrk output:\n${out}`);
  for (const group of Object.keys(cpuUsBy)) cpuUsBy[group] = (cpuUsBy[group] * 1e6) / requests;
  return { rps, p50ms: percentile(50), p99ms: percentile(99), requests, cpuUs: (cpuSeconds * 1e6) / requests, cpuUsBy };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Throws when wrk is not on the PATH. */
export function requireWrk(): void {
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed: run `make deps-test`');
}

/**
 * Measures every scenario in interleaved rounds: a short warm-up of each, then `rounds` rounds, every
 * other one in reverse, so drift (thermal, noisy neighbours) hits every scenario alike and none always
 * follows the same one. Prints each sample on stderr; returns the samples by scenario key.
 */
export function measureInterleaved<S extends { key: string; label: string }>(scenarios: S[], measure: (s: S, seconds?: number) => Sample, prefix = ''): Record<string, Sample[]> {
  const samples: Record<string, Sample[]> = Object.fromEntries(scenarios.map((s) => [s.key, []]));
  for (const s of scenarios) measure(s, Math.min(duration, 2));
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? scenarios : [...scenarios].reverse();
    for (const s of order) {
      const sample = measure(s);
      samples[s.key].push(sample);
      console.error(`${prefix}round ${round}/${rounds} ${s.label}: ${sample.rps.toFixed(0)} req/s, p99 ${sample.p99ms.toFixed(2)} ms, ${sample.cpuUs.toFixed(1)} us CPU/req`);
    }
  }
  return samples;
}
