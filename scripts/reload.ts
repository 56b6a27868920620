/**
 * `make reload`: re-render nginx/ into the running `make up` prefix (DATA_DIR/nginx-<PROXY_PORT>),
 * recompile the access policy into runtime/policy.json, test it all with `nginx -t`, and reload nginx
 * gracefully (no connection is dropped). It exits 0 only once new workers serve the new config. An
 * invalid policy or config, or one nginx cannot apply (a listen address in use), is refused with
 * every problem listed, naming the files in nginx/; the old one keeps serving.
 *
 * The instance is PROXY_PORT's; with PROXY_PORT unset, the only running one (or 8080 if none runs).
 * The policy file is POLICY_FILE if set (empty: policy off), else the one `make up` used. Every
 * `set $gate_app NAME;` in the nginx config (NGINX_CONF_DIR, else the folder `make up` renders) must
 * name an app of the policy (docs/policy.md "Applications").
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compilePolicyFile, gatePolicyFor } from '../auth-service/src/policy/policy-runtime.js';
import { lintNginxApps } from '../auth-service/src/policy/nginx-apps.js';
import { isAlive, LAUNCHER_PID_FILE, REPO_ROOT, readPolicySource, readTemplateVars, reloadNginx, writePolicySource } from './lib/nginx-runtime.js';

/** True if the runtime dir's launcher.pid names a live process. */
function hasLiveLauncher(prefix: string): boolean {
  const file = join(prefix, LAUNCHER_PID_FILE);
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isSafeInteger(pid) && pid > 0 && isAlive(pid);
}

/** The `make up` instances running from DATA_DIR (the port, its runtime dir). */
function runningInstances(dataDir: string): Array<{ port: string; prefix: string }> {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir)
    .map((name) => /^nginx-([0-9]+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && hasLiveLauncher(join(dataDir, m[0])))
    .map((m) => ({ port: m[1]!, prefix: join(dataDir, m[0]) }));
}

const dataDir = resolve(process.env.DATA_DIR ?? 'data');
let port = process.env.PROXY_PORT;
if (port === undefined || port === '') {
  const running = runningInstances(dataDir);
  if (running.length > 1) {
    console.error(`make reload: ${running.length} gateways run from ${dataDir} (ports ${running.map((r) => r.port).join(', ')}); choose one, e.g. PROXY_PORT=${running[0]!.port} make reload`);
    process.exit(1);
  }
  port = running[0]?.port ?? '8080';
}
const prefix = join(dataDir, `nginx-${port}`);
if (!existsSync(join(prefix, 'logs', 'nginx.pid'))) {
  console.error(`make reload: no gateway runs on port ${port} from ${dataDir} (no ${join(prefix, 'logs', 'nginx.pid')}; start it with \`PROXY_PORT=${port} make up\`)`);
  process.exit(1);
}
const env = process.env.POLICY_FILE;
const policyFile = env === undefined ? readPolicySource(prefix) : env === '' ? null : resolve(env);
let policyJson: string;
if (policyFile === null) {
  policyJson = JSON.stringify(gatePolicyFor(null));
  console.log('Access policy: off');
} else {
  const compiled = compilePolicyFile(policyFile, Math.floor(Date.now() / 1000));
  if (!compiled.ok) {
    console.error('make reload: the access policy was refused, the running one keeps serving:');
    for (const e of compiled.errors) console.error(`  - ${e}`);
    process.exit(1);
  }
  for (const w of compiled.warnings) console.log(`warning: ${w}`);
  policyJson = JSON.stringify(compiled.compiled);
  console.log(`Access policy: ${policyFile} (${compiled.compiled.rules.length} rules, default ${compiled.compiled.default})`);
}
const sourceDirFile = join(prefix, 'source-dir');
const nginxDir = process.env.NGINX_CONF_DIR || (existsSync(sourceDirFile) ? readFileSync(sourceDirFile, 'utf8').trim() : join(REPO_ROOT, 'nginx'));
const apps = lintNginxApps(nginxDir, policyFile === null ? null : (JSON.parse(policyJson) as Parameters<typeof lintNginxApps>[1]));
if (apps.errors.length > 0) {
  console.error('make reload: the nginx config names apps the access policy lacks; the running config keeps serving:');
  for (const e of apps.errors) console.error(`  - ${e}`);
  process.exit(1);
}
for (const w of apps.warnings) console.log(`warning: ${w}`);
const result = reloadNginx({ prefix, vars: readTemplateVars(prefix), extraFiles: { 'runtime/policy.json': policyJson } });
(result.ok ? console.log : console.error)(result.ok ? result.output : `make reload: ${result.output}`);
if (result.ok) writePolicySource(prefix, policyFile);
process.exit(result.ok ? 0 : 1);
