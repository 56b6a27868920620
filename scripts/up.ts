/**
 * `make up`: starts the whole gateway in the foreground on one machine, without Docker:
 * the store (embedded PostgreSQL under DATA_DIR unless DATABASE_URL is set), the auth service,
 * the demo upstream app and nginx with the njs gate. Ctrl-C stops everything it started.
 *
 * The access policy is nginx/policy.yaml unless POLICY_FILE names another file (POLICY_FILE= turns
 * it off); `make reload` recompiles the same file.
 *
 * On first run it generates the JWT secret into DATA_DIR (unless JWT_SECRET/JWT_SECRET_FILE is set)
 * and, if the user store is empty, creates the demo users and prints their passwords once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startDemoApp } from '../examples/demo-app/server.js';
import { startAuthService } from '../auth-service/src/main.js';
import { resolveStore } from '../auth-service/src/storage/embedded.js';
import { createPool, runMigrations } from '../auth-service/src/storage/db.js';
import { createUsersRepo } from '../auth-service/src/storage/users-repo.js';
import { seedDemoUsers } from '../auth-service/src/storage/seed.js';
import { createPasswordHasher, formatEnvIssue, newPasswordRulesFromEnv, passwordPolicyFromEnv } from '../auth-service/src/passwords/index.js';
import { REPO_ROOT, freePort, prepareNginxPrefix, startNginx, writePolicySource, type RunningNginx } from './lib/nginx-runtime.js';

type Stoppable = { name: string; stop: () => Promise<void> };

function parsePort(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`${name}: must be a TCP port 1-65535 (received ${JSON.stringify(raw)})`);
  }
  return n;
}

/** Generates DATA_DIR/jwt-secret (48 random bytes, base64url, mode 0600) on first run. */
function ensureJwtSecret(env: NodeJS.ProcessEnv, dataDir: string): void {
  if (env.JWT_SECRET || env.JWT_SECRET_FILE) return;
  const file = join(dataDir, 'jwt-secret');
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(48).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    console.log(`Generated a new JWT secret in ${file}`);
  }
  env.JWT_SECRET_FILE = file;
}

export async function up(env: NodeJS.ProcessEnv = process.env): Promise<{ stop: () => Promise<void>; proxyPort: number }> {
  const started: Stoppable[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        console.error(`stopping ${s.name} failed: ${(err as Error).message}`);
      }
    }
  };
  try {
    const proxyPort = parsePort('PROXY_PORT', env.PROXY_PORT, 8080);
    const dataDir = resolve(env.DATA_DIR ?? 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    ensureJwtSecret(env, dataDir);
    // `make up` serves plain http on loopback, so the cookie cannot be Secure there.
    env.AUTH_COOKIE_SECURE ??= 'false';

    const store = await resolveStore({ databaseUrl: env.DATABASE_URL || undefined, dataDir });
    started.push({ name: 'store', stop: () => store.stop() });
    console.log(store.kind === 'postgres' ? 'Store: PostgreSQL (DATABASE_URL)' : `Store: embedded PostgreSQL in ${dataDir}`);
    env.DATABASE_URL = store.url;

    const pool = createPool(store.url);
    try {
      await runMigrations(pool);
      const policy = passwordPolicyFromEnv(env);
      const rules = newPasswordRulesFromEnv(env);
      if (!policy.ok || !rules.ok) {
        throw new Error([...(policy.ok ? [] : policy.issues), ...(rules.ok ? [] : rules.issues)].map(formatEnvIssue).join('\n'));
      }
      const hasher = createPasswordHasher(policy.policy);
      const created = await seedDemoUsers(createUsersRepo(pool), hasher, rules.rules);
      if (created.length > 0) {
        console.log('\nCreated demo users. Their passwords are shown only this once:');
        for (const u of created) console.log(`  demo-user ${u.username} ${u.password}`);
        console.log('');
      }
    } finally {
      await pool.end();
    }

    const app = await startDemoApp({ host: '127.0.0.1', port: parsePort('DEMO_APP_PORT', env.DEMO_APP_PORT, 0) });
    started.push({ name: 'demo app', stop: () => app.close() });

    const authPort = parsePort('AUTH_PORT', env.AUTH_PORT, await freePort());
    const proxyHost = env.PROXY_HOST ?? '127.0.0.1';
    const { prefix, gateConfigFile } = prepareNginxPrefix({
      prefix: join(dataDir, 'nginx'),
      vars: { PROXY_LISTEN: `${proxyHost}:${proxyPort}`, APP_UPSTREAM: `127.0.0.1:${app.port}`, AUTH_UPSTREAM: `127.0.0.1:${authPort}` },
    });
    // The access policy: nginx/policy.yaml unless POLICY_FILE names another; POLICY_FILE= (empty) turns it off.
    const policyFile = env.POLICY_FILE === undefined ? join(REPO_ROOT, 'nginx', 'policy.yaml') : env.POLICY_FILE === '' ? null : resolve(env.POLICY_FILE);
    writePolicySource(prefix, policyFile);
    const authEnv: NodeJS.ProcessEnv = { ...env, AUTH_HOST: '127.0.0.1', AUTH_PORT: String(authPort), GATE_CONFIG_FILE: gateConfigFile };
    if (policyFile === null) delete authEnv.POLICY_FILE;
    else authEnv.POLICY_FILE = policyFile;
    const auth = await startAuthService(authEnv);
    console.log(policyFile === null ? 'Access policy: off (every signed-in user reaches every path)' : `Access policy: ${policyFile}`);
    started.push({ name: 'auth service', stop: () => auth.close() });
    const nginx: RunningNginx = await startNginx(prefix, proxyPort);
    started.push({ name: 'nginx', stop: () => nginx.stop() });

    console.log(`Gateway ready on http://${proxyHost}:${proxyPort}/  (try /federation; Ctrl-C stops)`);
    return { stop: stopAll, proxyPort };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  up()
    .then(({ stop }) => {
      let stopping = false;
      const onSignal = () => {
        if (stopping) return;
        stopping = true;
        console.log('\nStopping…');
        stop().then(() => process.exit(0));
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    })
    .catch((err: Error) => {
      console.error(`make up failed:\n${err.message}`);
      process.exit(1);
    });
}
