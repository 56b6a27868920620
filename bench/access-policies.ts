/**
 * Access policies for `make bench`: realistic policy SOURCE of any size, compiled with the real
 * compiler, plus the request paths the benchmark sends and checks.
 *
 * Every policy starts with the seed rules of nginx/policy.yaml (/healthz public, /federation for the
 * Federation group only), an /admin pair, two regex rules (backup files denied everywhere at a high
 * priority, so every request tests it; /payroll in office hours) and then fills up to the requested
 * size with prefix rules on distinct apps (/app-0000, /app-0001, ...) mixing every condition kind,
 * plus an exact rule every 25 apps. The 10-rule and the 1,000-rule policy differ only in size.
 */
import type { CompiledPolicy, PolicyRuleSource, PolicySource } from '../njs/src/core/policy-contract.js';
import { compilePolicy } from '../auth-service/src/policy/compile-policy.js';

/** The request wrk sends to every scenario: allowed by rule federation-members for kirk (group Federation). */
export const MEASURED_PATH = '/federation/reports/q3';
/** Denied to kirk by every bench policy (rule admin-others): proves a policy is in force. */
export const ADMIN_PATH = '/admin/settings';
/** Denied only by the 1,000-rule policy (rule app-0007): proves which policy a server loaded. */
export const LARGE_ONLY_DENIED_PATH = '/app-0007/reports/2024';

const SEED_RULES: PolicyRuleSource[] = [
  { id: 'healthz', path: { exact: '/healthz' }, methods: ['GET'], priority: 1, decision: 'allow', public: true },
  { id: 'backup-files', path: { regex: '\\.(bak|old|swp)$' }, priority: 5, decision: 'deny' },
  { id: 'federation-members', path: { prefix: '/federation' }, priority: 10, decision: 'allow', conditions: { groups: ['Federation'] } },
  { id: 'federation-others', path: { prefix: '/federation' }, priority: 20, decision: 'deny' },
  { id: 'admin-officers', path: { prefix: '/admin' }, priority: 30, decision: 'allow', conditions: { users: ['spock'] } },
  { id: 'admin-others', path: { prefix: '/admin' }, priority: 31, decision: 'deny' },
  {
    id: 'payroll-office-hours',
    path: { regex: '^/payroll(/|$)' },
    priority: 50,
    decision: 'allow',
    conditions: { time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00', timeZone: 'Europe/Berlin' } },
  },
];

/** The generated rule(s) for app number `i`: one prefix rule, plus an exact rule every 25 apps. */
function appRules(i: number): PolicyRuleSource[] {
  const app = `/app-${String(i).padStart(4, '0')}`;
  const id = `app-${String(i).padStart(4, '0')}`;
  const variants: Array<Omit<PolicyRuleSource, 'id' | 'path' | 'priority'>> = [
    { decision: 'allow', conditions: { groups: ['Federation', `team-${i}`] } },
    { decision: 'allow', methods: ['GET', 'POST'] },
    { decision: 'allow' },
    { decision: 'allow', conditions: { groups: ['Engineering'] } },
    { decision: 'allow', conditions: { users: ['kirk', 'spock'] } },
    { decision: 'allow', conditions: { claims: { email_domain: 'enterprise.example' } } },
    { decision: 'allow', conditions: { sourceIps: ['10.0.0.0/8', '2001:db8::/32'] } },
    { decision: 'deny' },
  ];
  const rules: PolicyRuleSource[] = [{ id, path: { prefix: app }, priority: 100, ...variants[i % variants.length] }];
  if (i % 25 === 0) {
    rules.push({ id: `${id}-export`, path: { exact: `${app}/export` }, methods: ['POST'], priority: 90, decision: 'deny' });
  }
  return rules;
}

/** Policy source with exactly `ruleCount` rules (at least the seed's 7), default allow like the seed. */
export function benchPolicySource(ruleCount: number): PolicySource {
  if (ruleCount < SEED_RULES.length) throw new Error(`a bench policy has at least ${SEED_RULES.length} rules`);
  const rules = SEED_RULES.slice();
  for (let i = 0; rules.length < ruleCount; i++) {
    for (const r of appRules(i)) if (rules.length < ruleCount) rules.push(r);
  }
  return { default: 'allow', rules };
}

/** Compiles benchPolicySource(ruleCount) with the auth service's compiler; throws on any error. */
export function compileBenchPolicy(ruleCount: number, nowSeconds: number): CompiledPolicy {
  const result = compilePolicy(benchPolicySource(ruleCount), { now: nowSeconds });
  if (!result.ok) throw new Error(`bench policy with ${ruleCount} rules does not compile:\n${result.errors.join('\n')}`);
  if (result.compiled.rules.length !== ruleCount) throw new Error(`bench policy has ${result.compiled.rules.length} rules, wanted ${ruleCount}`);
  return result.compiled;
}

/** The app of the apps scenario's measured location (`set $gate_app ...;`): one of BENCH_APPS. */
export const MEASURED_APP = 'app07';
/** How many apps the apps scenario's policy has. */
export const BENCH_APPS = 20;

/**
 * The apps scenario (issue 12): the `ruleCount`-rule policy at the top level (the default app) and as
 * each of `apps` apps (`app01`, `app02`, ...), compiled with the real compiler; the measured request
 * goes to MEASURED_APP. Throws on any compile error.
 */
export function compileBenchAppsPolicy(apps: number, ruleCount: number, nowSeconds: number): CompiledPolicy {
  const top = benchPolicySource(ruleCount);
  const source: PolicySource = { ...top, apps: {} };
  for (let i = 1; i <= apps; i++) source.apps![`app${String(i).padStart(2, '0')}`] = { default: top.default, rules: top.rules };
  const result = compilePolicy(source, { now: nowSeconds });
  if (!result.ok) throw new Error(`bench apps policy (${apps} x ${ruleCount} rules) does not compile:\n${result.errors.join('\n')}`);
  if (Object.keys(result.compiled.apps ?? {}).length !== apps) throw new Error(`bench apps policy has ${Object.keys(result.compiled.apps ?? {}).length} apps, wanted ${apps}`);
  return result.compiled;
}
