import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { freePort, REPO_ROOT } from '../../../scripts/lib/nginx-runtime.js';
import { TEST_SECRET, TEST_PREVIOUS_SECRET } from '../app.testkit.js';
import { compilePolicyFile, policyRuntimeFile } from '../policy/policy-runtime.js';
import { deriveKeyId } from '../services/gate-config.js';
import { createAuditRepo } from '../storage/audit-repo.js';
import { createPool, runMigrations } from '../storage/db.js';
import { createSessionsRepo } from '../storage/sessions-repo.js';
import { policyRevision, runStatusCli, type StatusReport } from './status-cli.js';

let database: FreshDatabase;
let pool: pg.Pool;
let dir: string;
const NOW = Date.now();
const SEED_POLICY = join(REPO_ROOT, 'nginx', 'policy.yaml');
const OIDC_SECRET = 'oidc-client-secret-that-must-never-show';
const TABLEAU_APP_SECRET = 'qV8m2LxT9pR4zK7wN1cJ6hB3yF5dG0sA';

async function run(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runStatusCli(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env }, () => NOW);
  return { code, stdout, stderr };
}

function open(sid: string, username: string, createdMs: number) {
  return createSessionsRepo(pool).open({ sid, username, userKey: `local:${username}`, source: 'local', src: 'local', clientIp: '192.0.2.9', userAgent: 'UA', groups: [], idpSid: null, nowMs: createdMs, idleSeconds: 600, maxSeconds: 3600, requestId: `req-${sid}` });
}

beforeAll(async () => {
  database = await createFreshDatabase();
  pool = createPool(database.url, { max: 2 });
  await runMigrations(pool);
  dir = mkdtempSync(join(tmpdir(), 'gw-status-'));
  // Two live sessions, one revoked, one idle too long.
  await open('AAAAAAAAAAAAAAAAAAAAAA', 'kirk', NOW - 60_000);
  await open('BBBBBBBBBBBBBBBBBBBBBB', 'spock', NOW - 30_000);
  await open('CCCCCCCCCCCCCCCCCCCCCC', 'mccoy', NOW - 30_000);
  await createSessionsRepo(pool).revoke('CCCCCCCCCCCCCCCCCCCCCC', { event: 'revoke', reason: 'test' });
  await open('DDDDDDDDDDDDDDDDDDDDDD', 'scotty', NOW - 1_200_000);
  const audit = createAuditRepo(pool);
  await audit.record({ event: 'login_failure', username: 'kirk', source: 'local', clientIp: '198.51.100.7', requestId: 'req-fail-1', reason: 'invalid' });
  await audit.record({ event: 'rate_limited', username: 'kirk\u001b[31m', source: 'local', clientIp: '198.51.100.7', requestId: 'req-fail-2', reason: 'rate-limited-user-ip' });
  await audit.record({ event: 'logout', username: 'spock', source: 'local', clientIp: '192.0.2.9', reason: 'user' });
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: database.url, JWT_SECRET: TEST_SECRET, ...extra };
}

describe('npm run status', () => {
  it('shows the config in force with secrets masked, keys by id, live sessions and the newest refusals', async () => {
    const retires = new Date(NOW + 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const { code, stdout, stderr } = await run([], baseEnv({
      JWT_PREVIOUS_SECRETS: `${TEST_PREVIOUS_SECRET}@${retires}`,
      OIDC_ISSUER: 'https://idp.example.com',
      OIDC_CLIENT_ID: 'gateway',
      OIDC_CLIENT_SECRET: OIDC_SECRET,
      PUBLIC_BASE_URL: 'https://gw.example.com',
      SESSION_COOKIE_DOMAIN: 'gw.example.com',
      APP_ORIGINS: 'https://app.other.example',
      DATABASE_URL: database.url.replace('postgres://postgres@', 'postgres://postgres:db-password@'),
      METRICS_PORT: '9464',
      TABLEAU_CONNECTED_APP_CLIENT_ID: 'app-1',
      TABLEAU_CONNECTED_APP_SECRET_ID: 'secret-1',
      TABLEAU_CONNECTED_APP_SECRET_VALUE: TABLEAU_APP_SECRET,
    }));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).not.toContain(TEST_SECRET);
    expect(stdout).not.toContain(TEST_PREVIOUS_SECRET);
    expect(stdout).not.toContain(OIDC_SECRET);
    expect(stdout).not.toContain(TABLEAU_APP_SECRET);
    expect(stdout).not.toContain('db-password');
    expect(stdout).toMatch(/^ {2}TABLEAU_CONNECTED_APP +client app-1, secret secret-1 \(value set\), scopes tableau:views:embed, ttl 300s, sub from username$/m);
    expect(stdout).toMatch(/^ {2}JWT_SECRET +set \(key id [A-Za-z0-9_-]{12}\)$/m);
    expect(stdout).toMatch(/^ {2}METRICS +127\.0\.0\.1:9464$/m);
    expect(stdout).toMatch(/^ {2}SESSION_COOKIE_NAME +__Secure-gw_session$/m);
    expect(stdout).toMatch(/^ {2}APP_ORIGINS +https:\/\/app\.other\.example$/m);
    expect(stdout).toMatch(/^ {2}OIDC +oidc https:\/\/idp\.example\.com \(client gateway, secret set\)$/m);
    expect(stdout).toContain(`  ${deriveKeyId(TEST_SECRET)}  active\n  ${deriveKeyId(TEST_PREVIOUS_SECRET)}  previous (retires ${retires})\n`);
  });

  it('reads the store: live sessions (not revoked, not idle) and refusals only, newest first, without control characters', async () => {
    const { code, stdout, stderr } = await run([], baseEnv());
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('\nLive sessions: 2\n');
    expect(stdout).toContain('Access policy: off (POLICY_FILE unset');
    const refusals = stdout.slice(stdout.indexOf('Recent refusals'));
    expect(refusals.split('\n')[1]).toMatch(/^ {2}AT +EVENT +USER +SOURCE +CLIENT IP +REASON +REQUEST ID$/);
    expect(refusals.split('\n')[2]).toMatch(/ rate_limited +kirk\?\[31m +local +198\.51\.100\.7 +rate-limited-user-ip +req-fail-2$/);
    expect(refusals.split('\n')[3]).toMatch(/ login_failure +kirk +local +198\.51\.100\.7 +invalid +req-fail-1$/);
    expect(refusals).not.toContain('logout');
    expect(stdout).not.toContain('\u001b');
  });

  it('--errors N keeps the newest N; --json gives the same as one object', async () => {
    const { code, stdout } = await run(['--json', '--errors', '1'], baseEnv());
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as StatusReport;
    expect(report.sessions).toEqual({ live: 2 });
    expect(report.recentFailures).toEqual([expect.objectContaining({ event: 'rate_limited', clientIp: '198.51.100.7', requestId: 'req-fail-2', at: expect.stringMatching(/Z$/) })]);
    expect(report.keys).toEqual([{ kid: deriveKeyId(TEST_SECRET), state: 'active', retiresAt: null }]);
    expect(report.config).toMatchObject({ ok: true, settings: { AUTH_PORT: '3001', METRICS: 'off' } });
  });

  it('names the policy revision and rule count, and whether nginx has the same one', async () => {
    const gateConfig = join(dir, 'gate-config.json');
    const compiled = compilePolicyFile(SEED_POLICY, Math.floor(NOW / 1000));
    if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
    const revision = policyRevision(compiled.compiled);
    const env = baseEnv({ POLICY_FILE: SEED_POLICY, GATE_CONFIG_FILE: gateConfig });

    expect((await run([], env)).stdout).toContain(`  in nginx: not written yet (${policyRuntimeFile(gateConfig)})`);
    // Compiled at another time: the same revision.
    writeFileSync(policyRuntimeFile(gateConfig), JSON.stringify({ ...compiled.compiled, compiledAt: 1 }));
    const same = await run([], env);
    expect(same.stdout).toContain(`Access policy: ${SEED_POLICY}\n  revision ${revision}, ${compiled.compiled.rules.length} rule(s), default ${compiled.compiled.default}\n  in nginx: same revision\n`);
    writeFileSync(policyRuntimeFile(gateConfig), JSON.stringify({ ...compiled.compiled, rules: compiled.compiled.rules.slice(1) }));
    expect((await run([], env)).stdout).toMatch(/ {2}in nginx: revision [A-Za-z0-9_-]{12} in .*policy\.json: restart the auth service, then reload nginx\n/);
  });

  it('lists the policy\'s apps with their rule counts and defaults, and an app change changes the revision', async () => {
    const gateConfig = join(dir, 'gate-config-apps.json');
    const appsPolicy = fileURLToPath(new URL('../../../examples/nginx/two-apps-policy.yaml', import.meta.url));
    const env = baseEnv({ POLICY_FILE: appsPolicy, GATE_CONFIG_FILE: gateConfig });
    const { stdout } = await run([], env);
    expect(stdout).toContain('  app finance: 2 rule(s), default deny\n  app hr: 2 rule(s), default allow\n  app wiki: 2 rule(s), default allow\n');
    const report = JSON.parse((await run(['--json'], env)).stdout) as StatusReport;
    expect(report.policy).toMatchObject({ apps: [{ name: 'finance', rules: 2, default: 'deny' }, { name: 'hr', rules: 2, default: 'allow' }, { name: 'wiki', rules: 2, default: 'allow' }] });
    const compiled = compilePolicyFile(appsPolicy, Math.floor(NOW / 1000));
    if (!compiled.ok) throw new Error(compiled.errors.join('\n'));
    const c = compiled.compiled;
    expect(policyRevision({ ...c, apps: { ...c.apps, hr: { ...c.apps!.hr!, default: 'deny' } } })).not.toBe(policyRevision(c));
    expect((await run([], baseEnv({ POLICY_FILE: SEED_POLICY, GATE_CONFIG_FILE: gateConfig }))).stdout).toContain('  apps: none (one app: the default)\n');
  });

  it('uses the make-up launcher secret in DATA_DIR when JWT_SECRET and JWT_SECRET_FILE are unset', async () => {
    const dataDir = mkdtempSync(join(dir, 'data-'));
    writeFileSync(join(dataDir, 'jwt-secret'), `${TEST_PREVIOUS_SECRET}\n`, { mode: 0o600 });
    const { code, stdout } = await run([], { DATABASE_URL: database.url, DATA_DIR: dataDir });
    expect(code).toBe(0);
    expect(stdout).toContain(`  ${deriveKeyId(TEST_PREVIOUS_SECRET)}  active\n`);
  });

  it('lists every config problem (exit 1) and still shows the store', async () => {
    const { code, stdout } = await run([], { DATABASE_URL: database.url, JWT_SECRET: 'changeme', AUTH_PORT: '99999' });
    expect(code).toBe(1);
    expect(stdout).toContain('INVALID: the auth service would refuse to start:');
    expect(stdout).toMatch(/^ {2}- AUTH_PORT: must be an integer from 0 to 65535 \(received "99999"\)$/m);
    expect(stdout).toMatch(/^ {2}- JWT_SECRET: /m);
    expect(stdout).not.toContain('changeme');
    expect(stdout).toContain('\nLive sessions: 2\n');
  });

  it('reports a store it cannot reach in one line (exit 1), and still shows the config', async () => {
    const { code, stdout, stderr } = await run([], baseEnv({ DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/nothing` }));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: [^\n]+\n$/);
    expect(stdout).toContain('Live sessions: unknown (store unavailable)');
    expect(stdout).toMatch(/^ {2}AUTH_PORT +3001$/m);
  });

  it.each([
    [['--errors', '0'], '--errors must be a whole number from 1 to 1000 (received "0")'],
    [['--bogus'], 'unknown option --bogus for "status"'],
    [['extra'], 'unexpected argument "extra" (try --help)'],
  ])('refuses %j as a usage error (exit 2)', async (argv, message) => {
    expect(await run(argv, baseEnv())).toEqual({ code: 2, stdout: '', stderr: `error: ${message}\n` });
  });

  it('--help explains itself', async () => {
    const { code, stdout } = await run(['--help'], {});
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: npm run status/);
  });
});
