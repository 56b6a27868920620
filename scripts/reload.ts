/**
 * `make reload`: re-render nginx/ into the running `make up` prefix (DATA_DIR/nginx), recompile the
 * access policy into runtime/policy.json, test it all with `nginx -t`, and reload nginx gracefully
 * (no connection is dropped). An invalid policy or config is refused with every problem listed;
 * the old one keeps serving.
 *
 * The policy file is POLICY_FILE if set (empty: policy off), else the one `make up` used.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compilePolicyFile, gatePolicyFor } from '../auth-service/src/policy/policy-runtime.js';
import { readPolicySource, readTemplateVars, reloadNginx, writePolicySource } from './lib/nginx-runtime.js';

const prefix = join(resolve(process.env.DATA_DIR ?? 'data'), 'nginx');
if (!existsSync(join(prefix, 'logs', 'nginx.pid'))) {
  console.error(`make reload: no running gateway found in ${prefix} (start it with \`make up\`)`);
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
const result = reloadNginx({ prefix, vars: readTemplateVars(prefix), extraFiles: { 'runtime/policy.json': policyJson } });
console.log(result.output);
if (result.ok) writePolicySource(prefix, policyFile);
process.exit(result.ok ? 0 : 1);
