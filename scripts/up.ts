/**
 * `make up`: starts the whole gateway in the foreground on one machine, without Docker:
 * the store (embedded PostgreSQL under DATA_DIR unless DATABASE_URL is set), the auth service,
 * the demo upstream app and nginx with the njs gate. Ctrl-C stops everything it started; if nginx
 * stops on its own, the launcher stops the rest and exits 1; if the launcher is killed (even -9),
 * nginx goes with it.
 *
 * The whole configuration is checked first, every problem reported at once. "Gateway ready" is
 * printed only once nginx answers on PROXY_PORT with the auth service's login page.
 *
 * Each PROXY_PORT has its own nginx runtime dir, DATA_DIR/nginx-<port>, so several instances can
 * run from one checkout; `PROXY_PORT=<port> make reload` reloads that one.
 *
 * The access policy is nginx/policy.yaml unless POLICY_FILE names another file (POLICY_FILE= turns
 * it off); `make reload` recompiles the same file.
 *
 * On first run it generates the JWT secret into DATA_DIR (unless JWT_SECRET/JWT_SECRET_FILE is set)
 * and, if the user store is empty, creates the demo users and prints their passwords once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { startDemoApp } from '../examples/demo-app/server.js';
import { startAuthService } from '../auth-service/src/main.js';
import { loadConfig } from '../auth-service/src/config.js';
import { isAppError } from '../auth-service/src/errors.js';
import { embeddedUrl, resolveStore } from '../auth-service/src/storage/embedded.js';
import { createPool, describeStoreConnectionError, describeStoreTarget, isConnectionError, runMigrations } from '../auth-service/src/storage/db.js';
import { createUsersRepo } from '../auth-service/src/storage/users-repo.js';
import { seedDemoUsers } from '../auth-service/src/storage/seed.js';
import { createPasswordHasher, formatEnvIssue, newPasswordRulesFromEnv, passwordPolicyFromEnv } from '../auth-service/src/passwords/index.js';
import { LAUNCHER_PID_FILE, REPO_ROOT, freePort, httpsSettingsFromEnv, isAlive, nginxSettingsFromEnv, prepareNginxPrefix, revocationsFromEnv, startNginx, statusSettingsFromEnv, stopLeftoverNginx, upstreamSettingsFromEnv, wafSettingsFromEnv, writePolicySource, type RunningNginx } from './lib/nginx-runtime.js';

/** `make up` runs the WAF in DetectionOnly unless WAF_MODE says otherwise: it logs, never blocks (docs/waf.md). */
const UP_WAF_MODE = 'DetectionOnly';

type Stoppable = { name: string; stop: () => Promise<void> };

/** The nginx prefix of the `make up` instance on `port`: each port has its own, so two instances never share one. */
export function runtimeDirFor(dataDir: string, port: number): string {
  return join(dataDir, `nginx-${port}`);
}

function portProblem(name: string, raw: string | undefined): string | null {
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? null : `${name}: must be a TCP port 1-65535 (received ${JSON.stringify(raw)})`;
}

function portOr(raw: string | undefined, fallback: number): number {
  return raw === undefined || raw === '' ? fallback : Number(raw);
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

/**
 * Every configuration problem at once, before anything starts: the launcher's own ports and the
 * auth service's whole config (password hashing included). DATABASE_URL, GATE_CONFIG_FILE and
 * AUTH_PORT are filled in by the launcher later, so stand-ins take their place here.
 */
function configProblems(env: NodeJS.ProcessEnv, policyFile: string | null): string[] {
  const problems = [portProblem('PROXY_PORT', env.PROXY_PORT), portProblem('AUTH_PORT', env.AUTH_PORT), portProblem('DEMO_APP_PORT', env.DEMO_APP_PORT)].filter(
    (p): p is string => p !== null,
  );
  const probe: NodeJS.ProcessEnv = { ...env, AUTH_HOST: '127.0.0.1', AUTH_PORT: '0', GATE_CONFIG_FILE: '/nonexistent/gate-config.json' };
  probe.DATABASE_URL ||= embeddedUrl('/nonexistent');
  if (policyFile === null) delete probe.POLICY_FILE;
  else probe.POLICY_FILE = policyFile;
  const loaded = loadConfig(probe);
  if (!loaded.ok) problems.push(...loaded.errors);
  problems.push(...nginxSettingsFromEnv(env).problems);
  problems.push(...httpsSettingsFromEnv(env).problems);
  problems.push(...upstreamSettingsFromEnv(env).problems);
  problems.push(...revocationsFromEnv(env).problems);
  problems.push(...statusSettingsFromEnv(env).problems);
  problems.push(...wafSettingsFromEnv(env, UP_WAF_MODE).problems);
  // TABLEAU_CA_FILE is read by both nginx and the auth service, with the same words: listed once.
  return [...new Set(problems)];
}

/** Fails with "port N is in use" before anything starts, rather than after the store and services did. */
async function assertPortFree(host: string, port: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolvePort, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new Error(`port ${port} is in use on ${host} (another program, or another \`make up\`, holds it): stop it or choose another PROXY_PORT`));
      else if (err.code === 'EACCES') reject(new Error(`port ${port} on ${host} needs root (ports below 1024): choose another PROXY_PORT`));
      else reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    });
    server.listen(port, host, () => server.close(() => resolvePort()));
  });
}

/**
 * Takes the instance's runtime dir: refuses if another live launcher holds it, stops an nginx an
 * earlier launcher left behind (killed with -9 on a machine without setpriv), then records our pid.
 */
async function claimRuntimeDir(prefix: string, port: number): Promise<void> {
  mkdirSync(prefix, { recursive: true });
  const pidFile = join(prefix, LAUNCHER_PID_FILE);
  const owner = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
    throw new Error(`another \`make up\` (pid ${owner}) already runs on port ${port} from ${prefix}`);
  }
  const leftover = await stopLeftoverNginx(prefix);
  if (leftover !== null) console.log(`Stopped nginx (pid ${leftover}) left running by an earlier \`make up\` on port ${port}`);
  writeFileSync(pidFile, `${process.pid}\n`);
}

/**
 * Waits until the gateway serves end to end: nginx answers GET /login on its port with the auth
 * service's page (so both run and nginx reaches the service), and the service is ready (/readyz).
 */
async function waitUntilServing(proxyHost: string, proxyPort: number, authPort: number, redirectsToHttps: boolean, timeoutMs = 15_000): Promise<void> {
  const host = proxyHost === '0.0.0.0' || proxyHost === '::' ? '127.0.0.1' : proxyHost.includes(':') ? `[${proxyHost}]` : proxyHost;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const login = await fetch(`http://${host}:${proxyPort}/login`, { headers: { accept: 'text/html' }, redirect: 'manual', signal: AbortSignal.timeout(2000) });
      const ready = await fetch(`http://127.0.0.1:${authPort}/readyz`, { signal: AbortSignal.timeout(2000) });
      const readiness = (await ready.json()) as { checks?: { database?: string } };
      // With HTTPS on, plain http answers the redirect (the certificate may be one fetch does not trust).
      if ((login.status === 200 || (redirectsToHttps && login.status === 301)) && ready.status === 200) return;
      last = `GET /login through nginx answered ${login.status}; the auth service's /readyz answered ${ready.status} (database ${readiness.checks?.database ?? 'unknown'})`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`the gateway did not become ready within ${timeoutMs / 1000} s: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Where the logs and the health and metrics endpoints of a `make up` instance are (docs/monitoring.md). */
export function monitoringLines(prefix: string, metricsPort: number | null, statusPort: string | undefined): string[] {
  return [
    'Logs:',
    `  nginx access log (JSON lines)  ${join(prefix, 'logs', 'access.log')}`,
    `  nginx error log                ${join(prefix, 'logs', 'error.log')}`,
    '  auth service (JSON lines)      this terminal (stdout)',
    `Health: /_gate/health through nginx; the auth service's /healthz and /readyz`,
    `Metrics: ${metricsPort === null ? 'auth service off (set METRICS_PORT)' : `http://127.0.0.1:${metricsPort}/metrics`}; nginx stub_status ${statusPort === undefined ? 'off (set NGINX_STATUS_PORT)' : `http://127.0.0.1:${statusPort}/stub_status`}`,
  ];
}

export interface RunningGateway {
  stop: () => Promise<void>;
  proxyPort: number;
  /** Resolves with the reason if a part (nginx) stops on its own while the gateway runs. */
  failed: Promise<string>;
}

export async function up(env: NodeJS.ProcessEnv = process.env): Promise<RunningGateway> {
  const started: Stoppable[] = [];
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    for (const s of started.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        console.error(`stopping ${s.name} failed: ${(err as Error).message}`);
      }
    }
  };
  try {
    const dataDir = resolve(env.DATA_DIR ?? 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o711 });
    ensureJwtSecret(env, dataDir);
    // `make up` serves plain http on loopback, so the cookie cannot be Secure there; with an https
    // PUBLIC_BASE_URL (README "HTTPS") the cookies are Secure and __Host- named.
    if (!/^https:/i.test(env.PUBLIC_BASE_URL ?? '')) env.AUTH_COOKIE_SECURE ??= 'false';
    // The access policy: nginx/policy.yaml unless POLICY_FILE names another; POLICY_FILE= (empty) turns it off.
    const policyFile = env.POLICY_FILE === undefined ? join(REPO_ROOT, 'nginx', 'policy.yaml') : env.POLICY_FILE === '' ? null : resolve(env.POLICY_FILE);
    // The apps the nginx config names (`set $gate_app NAME;`) are checked against the policy.
    env.NGINX_CONF_DIR ||= join(REPO_ROOT, 'nginx');
    const problems = configProblems(env, policyFile);
    if (problems.length > 0) throw new Error(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);

    const proxyPort = portOr(env.PROXY_PORT, 8080);
    const proxyHost = env.PROXY_HOST ?? '127.0.0.1';
    const runtimeDir = runtimeDirFor(dataDir, proxyPort);
    await claimRuntimeDir(runtimeDir, proxyPort);
    started.push({ name: 'runtime dir', stop: async () => rmSync(join(runtimeDir, LAUNCHER_PID_FILE), { force: true }) });
    await assertPortFree(proxyHost, proxyPort);

    const store = await resolveStore({ databaseUrl: env.DATABASE_URL || undefined, dataDir });
    started.push({ name: 'store', stop: () => store.stop() });
    console.log(store.kind === 'postgres' ? `Store: PostgreSQL at ${describeStoreTarget(store.url)} (DATABASE_URL)` : `Store: embedded PostgreSQL in ${dataDir}`);
    env.DATABASE_URL = store.url;

    const pool = createPool(store.url);
    try {
      await runMigrations(pool).catch((err: unknown) => {
        throw isConnectionError(err) || isAppError(err) ? new Error(describeStoreConnectionError(store.url, err)) : err;
      });
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

    const app = await startDemoApp({ host: '127.0.0.1', port: portOr(env.DEMO_APP_PORT, 0) });
    started.push({ name: 'demo app', stop: () => app.close() });

    const authPort = portOr(env.AUTH_PORT, await freePort());
    const { prefix, gateConfigFile } = prepareNginxPrefix({
      prefix: runtimeDir,
      vars: {
        PROXY_LISTEN: `${proxyHost}:${proxyPort}`,
        // APP_UPSTREAM (http(s)://host[:port]) puts your own app behind the gateway instead of the demo app.
        APP_UPSTREAM: `127.0.0.1:${app.port}`,
        AUTH_UPSTREAM: `127.0.0.1:${authPort}`,
        ...upstreamSettingsFromEnv(env).settings,
        ...nginxSettingsFromEnv(env).settings,
        ...httpsSettingsFromEnv(env).settings,
        ...statusSettingsFromEnv(env).settings,
        ...wafSettingsFromEnv(env, UP_WAF_MODE).settings,
      },
      revocations: revocationsFromEnv(env).revocations,
    });
    writePolicySource(prefix, policyFile);
    const authEnv: NodeJS.ProcessEnv = { ...env, AUTH_HOST: '127.0.0.1', AUTH_PORT: String(authPort), GATE_CONFIG_FILE: gateConfigFile };
    if (policyFile === null) delete authEnv.POLICY_FILE;
    else authEnv.POLICY_FILE = policyFile;
    const auth = await startAuthService(authEnv);
    console.log(policyFile === null ? 'Access policy: off (every signed-in user reaches every path)' : `Access policy: ${policyFile}`);
    const waf = wafSettingsFromEnv(env, UP_WAF_MODE).settings;
    console.log(waf.WAF_MODE === 'Off' ? 'WAF: off' : `WAF: ${waf.WAF_MODE}, paranoia level ${waf.WAF_PARANOIA_LEVEL}; matches in ${join(prefix, 'logs', 'waf.log')} (docs/waf.md)`);
    started.push({ name: 'auth service', stop: () => auth.close() });
    const nginx: RunningNginx = await startNginx(prefix, proxyPort);
    started.push({ name: 'nginx', stop: () => nginx.stop() });
    const failed = new Promise<string>((resolveFailed) => {
      nginx.process.once('exit', (code, signal) => {
        if (!stopping) resolveFailed(`nginx stopped on its own (${signal ?? `exit status ${code}`}); see ${join(prefix, 'logs', 'error.log')}`);
      });
    });
    await waitUntilServing(proxyHost, proxyPort, authPort, httpsSettingsFromEnv(env).settings.TLS_CERT_FILE !== undefined);

    console.log(`Gateway ready on http://${proxyHost}:${proxyPort}/  (try /federation; Ctrl-C stops; reload with PROXY_PORT=${proxyPort} make reload)`);
    const https = httpsSettingsFromEnv(env).settings;
    if (https.TLS_CERT_FILE !== undefined) {
      console.log(`HTTPS on port ${https.HTTPS_PORT} (plain http redirects there)${/^https:/i.test(env.PUBLIC_BASE_URL ?? '') ? '' : '; set PUBLIC_BASE_URL=https://<host>:<port> for Secure __Host- cookies'}`);
    }
    for (const line of monitoringLines(prefix, auth.metricsPort, statusSettingsFromEnv(env).settings.NGINX_STATUS_PORT)) console.log(line);
    return { stop: stopAll, proxyPort, failed };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  up()
    .then(({ stop, failed }) => {
      let stopping = false;
      const stopWith = (code: number) => {
        if (stopping) return;
        stopping = true;
        console.log('\nStopping…');
        stop().then(() => process.exit(code));
      };
      process.on('SIGINT', () => stopWith(0));
      process.on('SIGTERM', () => stopWith(0));
      void failed.then((reason) => {
        console.error(`make up: ${reason}; stopping the rest`);
        stopWith(1);
      });
    })
    .catch((err: Error) => {
      console.error(`make up failed:\n${err.message}`);
      process.exit(1);
    });
}
