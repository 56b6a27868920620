/**
 * `make reload`: re-render nginx/ into the running `make up` prefix (DATA_DIR/nginx), test it, and
 * reload nginx gracefully. An invalid config is refused with nginx's message; the old one keeps serving.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readTemplateVars, reloadNginx } from './lib/nginx-runtime.js';

const prefix = join(resolve(process.env.DATA_DIR ?? 'data'), 'nginx');
if (!existsSync(join(prefix, 'logs', 'nginx.pid'))) {
  console.error(`make reload: no running gateway found in ${prefix} (start it with \`make up\`)`);
  process.exit(1);
}
const result = reloadNginx({ prefix, vars: readTemplateVars(prefix) });
console.log(result.output);
process.exit(result.ok ? 0 : 1);
