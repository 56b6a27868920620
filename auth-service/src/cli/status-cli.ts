import crypto from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CompiledPolicy, GatePolicy } from '../../../njs/src/core/policy-contract.js';
import { loadConfig, maskDatabaseUrl, type AuthConfig } from '../config.js';
import { policyRuntimeFile } from '../policy/policy-runtime.js';
import { deriveKeyId } from '../services/gate-config.js';
import { recentFailures, type AuthEventRecord } from '../storage/audit-repo.js';
import { embeddedUrl } from '../storage/embedded.js';
import { countLiveSessions } from '../storage/sessions-repo.js';
import { formatTable, reportCliError, withStore, type CliIo } from './cli-store.js';
import { parseCommandArgs, UsageError } from './cli-text.js';

/**
 * The logic of `npm run status` (the bin is status.ts): one page for operators, read from the same
 * environment the auth service starts with. The config in force (secrets never shown: key ids and
 * "set" only), the access policy's revision and rule count, the signing key ids, the live sessions
 * and the newest refusals from the audit trail.
 *
 * Exit codes: 0 all shown; 1 the config is invalid or the store unavailable (the rest is still
 * shown); 2 usage error.
 */

const USAGE = `Usage: npm run status [-- --errors N] [--json]

  --errors N   the newest N refusals from the audit trail (default 10, at most 1000)
  --json       one JSON object instead of text

Reads the auth service's settings from the environment, as the service does (docker-compose: run it
inside the auth container, \`docker-compose exec auth npm run status\`). Under \`make up\`, with no
JWT_SECRET or JWT_SECRET_FILE, it reads DATA_DIR/jwt-secret as the launcher does.
`;

const OPTIONS = { errors: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

/** What the page shows, also its --json form. */
export interface StatusReport {
  config: { ok: true; settings: Record<string, string> } | { ok: false; problems: string[] };
  policy:
    | { file: string; revision: string; rules: number; default: string; inNginx: string; apps: Array<{ name: string; rules: number; default: string }> }
    | { file: null }
    | null;
  keys: Array<{ kid: string; state: 'active' | 'previous' | 'retired'; retiresAt: string | null }>;
  sessions: { live: number } | { error: string };
  recentFailures: Array<{ at: string; event: string; user: string | null; source: string | null; clientIp: string | null; reason: string | null; requestId: string | null }> | { error: string };
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The policy's revision: a digest of what decides (rules and default, and each app's), not of when
 * it was compiled, so the same policy file has the same revision wherever and whenever it is
 * compiled. A policy without apps keeps the revision it had before apps existed.
 */
export function policyRevision(policy: Pick<CompiledPolicy, 'rules' | 'default' | 'apps'>): string {
  const deciding: { default: string; rules: unknown; apps?: { [app: string]: unknown } } = { default: policy.default, rules: policy.rules };
  if (policy.apps !== undefined) {
    deciding.apps = {};
    for (const name of Object.keys(policy.apps).sort()) deciding.apps[name] = { default: policy.apps[name]!.default, rules: policy.apps[name]!.rules };
  }
  return crypto.createHash('sha256').update(JSON.stringify(deciding), 'utf8').digest('base64url').slice(0, 12);
}

/** Every setting in force, as operators write them, with secrets replaced by "set" (or a key id). */
export function describeSettings(c: AuthConfig): Record<string, string> {
  const rate = (r: { points: number; durationSeconds: number }) => `${r.points}/${r.durationSeconds}`;
  const settings: Record<string, string> = {
    AUTH_HOST: c.host,
    AUTH_PORT: String(c.port),
    METRICS: c.metrics === null ? 'off' : `${c.metrics.host}:${c.metrics.port}`,
    DATABASE_URL: maskDatabaseUrl(c.databaseUrl),
    JWT_SECRET: `set (key id ${deriveKeyId(c.jwt.secret)})`,
    JWT_PREVIOUS_SECRETS: c.jwt.previousKeys.length === 0 ? 'none' : `${c.jwt.previousKeys.length} key(s), see Keys`,
    SESSION_TOKEN_TTL_SECONDS: String(c.session.ttlSeconds),
    SESSION_MAX_SECONDS: String(c.sessionLifetimes.maxSeconds),
    SESSION_IDLE_SECONDS: String(c.sessionLifetimes.idleSeconds),
    SESSION_LEEWAY_SECONDS: String(c.session.leewaySeconds),
    SESSION_COOKIE_NAME: c.session.cookieName,
    AUTH_COOKIE_SECURE: String(c.session.cookieSecure),
    SESSION_IP_BINDING: c.session.ipBinding,
    LOGIN_RATE_LIMIT_IP: rate(c.rateLimits.ip),
    LOGIN_RATE_LIMIT_USER: rate(c.rateLimits.user),
    LOGIN_RATE_LIMIT_USER_IP: rate(c.rateLimits.userIp),
    AUTH_TRUST_PROXY: c.trustProxy === false ? 'false' : String(c.trustProxy),
    AUTH_CHAIN: c.chain.join(','),
    LOGIN_METHODS: [c.loginMethods.password ? 'password' : '', c.loginMethods.oidc ? 'oidc' : ''].filter(Boolean).join(','),
    PASSWORD_HASH: c.passwordPolicy.algorithm,
    TABLEAU_URL: c.tableau === null ? 'off' : `${c.tableau.url} (site ${c.tableau.site === '' ? '(default)' : c.tableau.site})`,
    TABLEAU_CONNECTED_APP:
      c.tableauConnectedApp === null
        ? 'off'
        : `client ${c.tableauConnectedApp.clientId}, secret ${c.tableauConnectedApp.secretId} (value set), scopes ${c.tableauConnectedApp.scopes.join(' ')}, ` +
          `ttl ${c.tableauConnectedApp.ttlSeconds}s, sub from ${c.tableauConnectedApp.usernameClaim}` +
          (c.tableauConnectedApp.userAttributes.length === 0 ? '' : `, attributes ${c.tableauConnectedApp.userAttributes.join(',')}`),
    AUTH_CUSTOM_MODULE: c.customModule ?? 'off',
    OIDC: c.oidc === null ? 'off' : `${c.oidc.flavour} ${c.oidc.issuer} (client ${c.oidc.clientId}, secret set)`,
    PUBLIC_BASE_URL: c.publicBaseUrl ?? 'unset',
    SESSION_COOKIE_DOMAIN: c.sso.cookieDomain ?? 'unset (host-only)',
    APP_ORIGINS: c.sso.appOrigins.length === 0 ? 'none' : c.sso.appOrigins.join(','),
    SSO_HANDOFF_TTL_SECONDS: String(c.sso.handoffTtlSeconds),
    POLICY_FILE: c.accessPolicy?.file ?? 'off',
    NGINX_CONF_DIR: c.nginxConfDir ?? 'unset',
    GATE_CONFIG_FILE: c.gateConfigFile ?? 'unset',
    AUDIT_RETENTION_DAYS: String(c.auditRetentionDays),
    LOG_LEVEL: c.logLevel,
    ALLOW_INSECURE_HTTP_IDP: String(c.allowInsecureHttpIdp),
  };
  return settings;
}

/** How the policy nginx loaded (runtime/policy.json beside GATE_CONFIG_FILE) compares with POLICY_FILE. */
function policyInNginx(c: AuthConfig, revision: string): string {
  if (c.gateConfigFile === null) return 'unknown (GATE_CONFIG_FILE unset)';
  const file = policyRuntimeFile(c.gateConfigFile);
  if (!existsSync(file)) return `not written yet (${file})`;
  try {
    const loaded = JSON.parse(readFileSync(file, 'utf8')) as GatePolicy;
    if ('off' in loaded) return `policy off in ${file}: restart the auth service, then reload nginx`;
    const theirs = policyRevision(loaded);
    return theirs === revision ? 'same revision' : `revision ${theirs} in ${file}: restart the auth service, then reload nginx`;
  } catch {
    return `unreadable (${file})`;
  }
}

function keysOf(c: AuthConfig, nowMs: number): StatusReport['keys'] {
  return [
    { kid: deriveKeyId(c.jwt.secret), state: 'active' as const, retiresAt: null },
    ...c.jwt.previousKeys.map((k) => ({ kid: deriveKeyId(k.secret), state: k.retiredAt * 1000 > nowMs ? ('previous' as const) : ('retired' as const), retiresAt: iso(k.retiredAt * 1000) })),
  ];
}

/**
 * The environment the auth service would see: under `make up` (no JWT_SECRET or JWT_SECRET_FILE) the
 * launcher's generated DATA_DIR/jwt-secret; a stand-in for DATABASE_URL (the store is found by
 * withStore) and GATE_CONFIG_FILE (only needed for POLICY_FILE to be read), neither used to connect.
 */
function serviceEnv(env: CliIo['env']): CliIo['env'] {
  const out = { ...env };
  const dataDir = env.DATA_DIR || './data';
  const generated = path.join(dataDir, 'jwt-secret');
  if (!env.JWT_SECRET && !env.JWT_SECRET_FILE && existsSync(generated)) out.JWT_SECRET_FILE = generated;
  out.DATABASE_URL ||= embeddedUrl(path.resolve(dataDir));
  return out;
}

function renderText(r: StatusReport, nowMs: number): string {
  const out: string[] = [`Gateway status at ${iso(nowMs)}`, ''];
  out.push('Config in force (secrets masked):');
  if (r.config.ok) {
    const settings = r.config.settings;
    const width = Math.max(...Object.keys(settings).map((k) => k.length));
    for (const [k, v] of Object.entries(settings)) out.push(`  ${k.padEnd(width)}  ${v}`);
  } else {
    out.push('  INVALID: the auth service would refuse to start:');
    for (const p of r.config.problems) out.push(`  - ${p}`);
  }
  out.push('');
  if (r.policy === null) out.push('Access policy: unknown (config invalid)');
  else if (r.policy.file === null) out.push('Access policy: off (POLICY_FILE unset: every signed-in user reaches every path)');
  else {
    out.push(`Access policy: ${r.policy.file}`, `  revision ${r.policy.revision}, ${r.policy.rules} rule(s), default ${r.policy.default}`, `  in nginx: ${r.policy.inNginx}`);
    // The apps (set $gate_app NAME; in the nginx config), each with its own rules and default.
    if (r.policy.apps.length === 0) out.push('  apps: none (one app: the default)');
    else for (const a of r.policy.apps) out.push(`  app ${a.name}: ${a.rules} rule(s), default ${a.default}`);
  }
  out.push('');
  out.push('Signing keys (ids only):');
  if (r.keys.length === 0) out.push('  unknown (config invalid)');
  for (const k of r.keys) out.push(`  ${k.kid}  ${k.state}${k.retiresAt === null ? '' : ` (${k.state === 'retired' ? 'retired' : 'retires'} ${k.retiresAt})`}`);
  out.push('');
  out.push(`Live sessions: ${'live' in r.sessions ? r.sessions.live : `unknown (${r.sessions.error})`}`);
  out.push('');
  if (!Array.isArray(r.recentFailures)) {
    out.push(`Recent refusals: unknown (${r.recentFailures.error})`);
  } else if (r.recentFailures.length === 0) {
    out.push('Recent refusals: none');
  } else {
    out.push('Recent refusals (newest first; npm run audit -- tail shows more):');
    const cell = (v: string | null) => (v === null || v === '' ? '-' : v.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'));
    const table = formatTable(
      ['AT', 'EVENT', 'USER', 'SOURCE', 'CLIENT IP', 'REASON', 'REQUEST ID'],
      r.recentFailures.map((e) => [e.at, e.event, cell(e.user), cell(e.source), cell(e.clientIp), cell(e.reason), cell(e.requestId)]),
    );
    out.push(...table.trimEnd().split('\n').map((l) => `  ${l}`));
  }
  return out.join('\n') + '\n';
}

function failureJson(e: AuthEventRecord): Extract<StatusReport['recentFailures'], unknown[]>[number] {
  return { at: iso(e.at.getTime()), event: e.event, user: e.username, source: e.source, clientIp: e.clientIp, reason: e.reason, requestId: e.requestId };
}

/** Runs `npm run status` and returns its exit code. Errors go to `stderr` as one line, never a stack. */
export async function runStatusCli(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  try {
    const { values, positionals } = parseCommandArgs('status', argv, OPTIONS);
    if (values.help === true) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])} (try --help)`);
    const errorsText = values.errors ?? '10';
    if (!/^[0-9]{1,4}$/.test(errorsText) || Number(errorsText) < 1 || Number(errorsText) > 1000) {
      throw new UsageError(`--errors must be a whole number from 1 to 1000 (received ${JSON.stringify(errorsText)})`);
    }
    const nowMs = now();
    const env = serviceEnv(io.env);
    const loaded = loadConfig(env);
    const report: StatusReport = {
      config: loaded.ok ? { ok: true, settings: describeSettings(loaded.config) } : { ok: false, problems: loaded.errors },
      policy: null,
      keys: [],
      sessions: { error: 'not read' },
      recentFailures: { error: 'not read' },
    };
    if (loaded.ok) {
      const c = loaded.config;
      const ap = c.accessPolicy;
      if (ap === null) report.policy = { file: null };
      else {
        const revision = policyRevision(ap.compiled);
        const apps = Object.keys(ap.compiled.apps ?? {})
          .sort()
          .map((name) => ({ name, rules: ap.compiled.apps![name]!.rules.length, default: ap.compiled.apps![name]!.default }));
        report.policy = { file: ap.file, revision, rules: ap.compiled.rules.length, default: ap.compiled.default, inNginx: policyInNginx(c, revision), apps };
      }
      report.keys = keysOf(c, nowMs);
    }
    let storeOk = true;
    try {
      await withStore(io, 'identity-gateway-status-cli', async (pool) => {
        report.sessions = { live: await countLiveSessions(pool, nowMs) };
        report.recentFailures = (await recentFailures(pool, Number(errorsText))).map(failureJson);
      });
    } catch (err) {
      storeOk = false;
      const code = reportCliError(io, err);
      report.sessions = { error: 'store unavailable' };
      report.recentFailures = { error: 'store unavailable' };
      if (code !== 1) return code;
    }
    io.stdout.write(values.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderText(report, nowMs));
    return loaded.ok && storeOk ? 0 : 1;
  } catch (err) {
    return reportCliError(io, err);
  }
}
