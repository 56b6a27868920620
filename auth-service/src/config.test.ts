import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { DEFAULT_LOGIN_HASH_CONCURRENCY, loadConfig, maxSessionAgeSeconds, type Env } from './config.js';

const SECRET = randomBytes(48).toString('base64url');
const OTHER = randomBytes(48).toString('base64url');
const DB = 'postgres://gw:dbpass@db.internal:5432/gateway';
const base: Env = { DATABASE_URL: DB, JWT_SECRET: SECRET };

const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorsOf(env: Env): string[] {
  const result = loadConfig(env);
  if (result.ok) throw new Error('expected config errors');
  return result.errors;
}

function configOf(env: Env) {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

describe('loadConfig defaults', () => {
  test('fills every optional variable with its documented default', () => {
    expect(configOf(base)).toEqual({
      host: '127.0.0.1',
      port: 3001,
      metrics: null,
      nginxConfDir: null,
      databaseUrl: DB,
      jwt: { secret: SECRET, previousSecrets: [], previousKeys: [] },
      session: { ttlSeconds: 300, leewaySeconds: 30, cookieName: 'gw_session', cookieSecure: true, ipBinding: 'exact' },
      passwordPolicy: { algorithm: 'pbkdf2-sha512', pbkdf2Iterations: 210000, argon2: { memoryCost: 19456, timeCost: 2, parallelism: 1 } },
      payloadGroups: { all: false, exact: [], prefixes: [] },
      rateLimits: {
        ip: { points: 20, durationSeconds: 300 },
        user: { points: 10, durationSeconds: 300 },
        userIp: { points: 5, durationSeconds: 300 },
      },
      loginHashing: { concurrency: DEFAULT_LOGIN_HASH_CONCURRENCY, queue: 32, nice: 19 },
      trustProxy: ['loopback'],
      logLevel: 'info',
      brandName: 'Identity Gateway',
      pageTheme: { css: '', logoSrc: null },
      gateConfigFile: null,
      accessPolicy: null,
      allowInsecureHttpIdp: false,
      assertion: null,
      tableau: null,
      tableauConnectedApp: null,
      customModule: null,
      chain: ['local'],
      oidc: null,
      loginMethods: { password: true, oidc: false },
      publicBaseUrl: null,
      sessionLifetimes: { maxSeconds: 43200, idleSeconds: 3600 },
      auditRetentionDays: 90,
      sso: { cookieDomain: null, appOrigins: [], handoffTtlSeconds: 30 },
      warnings: [],
    });
  });

  test('treats empty and blank values as unset', () => {
    expect(configOf({ ...base, AUTH_PORT: '', SESSION_COOKIE_NAME: '  ', GATE_CONFIG_FILE: '' })).toMatchObject({
      port: 3001,
      session: { cookieName: 'gw_session' },
      gateConfigFile: null,
    });
  });

  test('reads every variable', () => {
    const config = configOf({
      ...base,
      AUTH_HOST: '0.0.0.0',
      AUTH_PORT: '0',
      JWT_PREVIOUS_SECRETS: `${OTHER}@2027-01-31T00:00:00Z, ${SECRET}@2027-01-31T00:00:00Z`,
      SESSION_MAX_SECONDS: '3600',
      SESSION_IDLE_SECONDS: '1800',
      SESSION_TOKEN_TTL_SECONDS: '120',
      AUDIT_RETENTION_DAYS: '30',
      SESSION_LEEWAY_SECONDS: '0',
      SESSION_COOKIE_NAME: '__Host-gw',
      AUTH_COOKIE_SECURE: 'false',
      SESSION_IP_BINDING: 'subnet',
      PASSWORD_HASH_ALGORITHM: 'argon2id',
      PASSWORD_PBKDF2_ITERATIONS: '600000',
      LOGIN_RATE_LIMIT_IP: '100/60',
      LOGIN_RATE_LIMIT_USER: '3/900',
      LOGIN_RATE_LIMIT_USER_IP: '2/120',
      LOGIN_HASH_CONCURRENCY: '3',
      LOGIN_HASH_QUEUE: '0',
      LOGIN_HASH_NICE: '0',
      AUTH_TRUST_PROXY: 'loopback, 10.0.0.0/8, fd00::/8',
      LOG_LEVEL: 'debug',
      BRAND_NAME: 'Acme SSO',
      GATE_CONFIG_FILE: '/run/gw/gate.json',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 0,
      // The active secret is not repeated among the previous ones.
      jwt: { secret: SECRET, previousSecrets: [OTHER], previousKeys: [{ secret: OTHER, retiredAt: Date.parse('2027-01-31T00:00:00Z') / 1000 }] },
      session: { ttlSeconds: 120, leewaySeconds: 0, cookieName: '__Host-gw', cookieSecure: false, ipBinding: 'subnet' },
      passwordPolicy: { algorithm: 'argon2id', pbkdf2Iterations: 600000 },
      rateLimits: { ip: { points: 100, durationSeconds: 60 }, user: { points: 3, durationSeconds: 900 }, userIp: { points: 2, durationSeconds: 120 } },
      loginHashing: { concurrency: 3, queue: 0, nice: 0 },
      trustProxy: ['loopback', '10.0.0.0/8', 'fd00::/8'],
      logLevel: 'debug',
      brandName: 'Acme SSO',
      gateConfigFile: '/run/gw/gate.json',
      sessionLifetimes: { maxSeconds: 3600, idleSeconds: 1800 },
      auditRetentionDays: 30,
      warnings: [],
    });
  });

  test.each([
    ['false', false],
    ['1', 1],
    ['127.0.0.1', ['127.0.0.1']],
    ['uniquelocal,linklocal', ['uniquelocal', 'linklocal']],
  ])('reads AUTH_TRUST_PROXY=%s', (value, expected) => {
    expect(configOf({ ...base, AUTH_TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });
});

describe('JWT_SECRET_FILE', () => {
  test('reads the secret from the file and drops the trailing newline', () => {
    const file = join(dir, 'secret');
    writeFileSync(file, `${SECRET}\n`);
    expect(configOf({ DATABASE_URL: DB, JWT_SECRET_FILE: file }).jwt.secret).toBe(SECRET);
  });

  test('reports an unreadable file with its path and the error code', () => {
    expect(errorsOf({ DATABASE_URL: DB, JWT_SECRET_FILE: join(dir, 'missing') })).toEqual([
      `JWT_SECRET_FILE: must name a readable file (received ${JSON.stringify(join(dir, 'missing'))}: ENOENT)`,
    ]);
  });

  test('refuses a weak secret in the file without showing it', () => {
    const file = join(dir, 'weak');
    writeFileSync(file, 'hunter2\n');
    const [error] = errorsOf({ DATABASE_URL: DB, JWT_SECRET_FILE: file });
    expect(error).toMatch(/^JWT_SECRET_FILE: the file's contents must be at least 32 bytes of random data \(received 7 bytes, value masked\)/);
    expect(error).not.toContain('hunter2');
  });

  test('refuses JWT_SECRET and JWT_SECRET_FILE together', () => {
    const file = join(dir, 'secret2');
    writeFileSync(file, SECRET);
    expect(errorsOf({ ...base, JWT_SECRET_FILE: file })).toEqual([
      'JWT_SECRET: set exactly one of JWT_SECRET and JWT_SECRET_FILE (both are set; values masked)',
    ]);
  });
});

describe('loadConfig errors', () => {
  test('reports every problem at once, each with the variable, the rule and the value received', () => {
    const errors = errorsOf({
      DATABASE_URL: 'mysql://root:hunter2@db/x',
      JWT_SECRET: 'short-secret',
      AUTH_PORT: '70000',
      AUTH_COOKIE_SECURE: 'yes',
      PROXY_IP_BINDING: 'true',
      SESSION_TTL_SECONDS: '10',
      SESSION_LEEWAY_SECONDS: '-1',
      SESSION_COOKIE_NAME: 'bad name;',
      LOGIN_RATE_LIMIT_IP: '20 per 5 minutes',
      LOGIN_RATE_LIMIT_USER: '10/86400',
      AUTH_TRUST_PROXY: 'true',
      LOG_LEVEL: 'verbose',
      PASSWORD_HASH_ALGORITHM: 'md5',
      PASSWORD_PBKDF2_ITERATIONS: '1000',
      LOGIN_HASH_CONCURRENCY: '0',
      LOGIN_HASH_QUEUE: 'many',
      LOGIN_HASH_NICE: '-5',
    });
    expect(errors).toEqual(
      expect.arrayContaining([
        'AUTH_PORT: must be an integer from 0 to 65535 (received "70000")',
        'DATABASE_URL: must be a postgres:// or postgresql:// URL with a host (received "mysql://root:***@db/x")',
        'SESSION_TTL_SECONDS: must be an integer from 60 to 604800 (received "10")',
        'SESSION_LEEWAY_SECONDS: must be an integer from 0 to 300 (received "-1")',
        'SESSION_COOKIE_NAME: must be 1-64 cookie-name characters (letters, digits and !#$%&\'*+-.^_`|~) (received "bad name;")',
        'AUTH_COOKIE_SECURE: must be one of true, false (received "yes")',
        'PROXY_IP_BINDING: must be one of on, off (received "true")',
        'LOGIN_RATE_LIMIT_IP: must be "attempts/seconds" with attempts from 1 to 100000 and seconds from 1 to 86400, e.g. "10/300" (received "20 per 5 minutes")',
        'LOGIN_RATE_LIMIT_USER: must be "attempts/seconds" with attempts from 1 to 100000 and seconds from 1 to 3600, e.g. "10/300" (received "10/86400")',
        expect.stringMatching(/^AUTH_TRUST_PROXY: must be "false", a hop count .* \(received "true"\)$/),
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (received "verbose")',
        expect.stringMatching(/^JWT_SECRET: must be at least 32 bytes of random data \(received 12 bytes, value masked\)/),
        'PASSWORD_HASH_ALGORITHM: must be one of pbkdf2-sha512, argon2id (received "md5")',
        'PASSWORD_PBKDF2_ITERATIONS: must be an integer from 100000 to 2147483647 (received "1000")',
        'LOGIN_HASH_CONCURRENCY: must be an integer from 1 to 64 (received "0")',
        'LOGIN_HASH_QUEUE: must be an integer from 0 to 10000 (received "many")',
        'LOGIN_HASH_NICE: must be an integer from 0 to 19 (received "-5")',
      ]),
    );
    expect(errors).toHaveLength(17);
    expect(errors.join('\n')).not.toContain('short-secret');
    expect(errors.join('\n')).not.toContain('hunter2');
  });

  test('names the missing required variables', () => {
    expect(errorsOf({})).toEqual([
      'DATABASE_URL: is required (a postgres:// connection URL) (received nothing)',
      'JWT_SECRET: is required, or JWT_SECRET_FILE naming a file that holds it (received nothing)',
    ]);
  });

  test.each([
    ['shorter than 32 bytes', 'Zx9kQ2mV7pL4', /must be at least 32 bytes of random data \(received 12 bytes, value masked\)/],
    ['a single repeated character', 'a'.repeat(64), /must not be a single repeated character/],
    ['a short pattern repeated', 'abc123'.repeat(8), /must not be a repeated pattern .*repeating every 6 characters/],
    ['a random chunk pasted twice', 'k3J9xQ2mV7pL4wZ8rT6yN1b'.repeat(2), /must not be a repeated pattern/],
    ['the placeholder changeme', 'changeme-changeme-changeme-changeme!', /looks like a placeholder, it contains "changeme"/],
    ['a sentence with "secret" in it', 'this is my very own jwt secret for prod', /looks like a placeholder, it contains "secret"/],
    ['32 hex digits (only 16 random bytes)', '3f9a0c7be21d4856af03b9c7e1d25a48', /looks like hex and must then have at least 64 hex digits/],
    ['two letters alternating irregularly', 'xyyxxyxyxyyyxxyxyxyyxyxyyxxyyxyxxy', /must carry at least 128 bits of entropy/],
  ])('refuses a JWT_SECRET that is %s, masking it', (_name, secret, message) => {
    const [error] = errorsOf({ DATABASE_URL: DB, JWT_SECRET: secret });
    expect(error).toMatch(/^JWT_SECRET: /);
    expect(error).toMatch(message);
    expect(error).toContain('value masked');
    expect(error).not.toContain(secret);
  });

  test('validates each previous secret and says which entry is wrong', () => {
    expect(errorsOf({ ...base, JWT_PREVIOUS_SECRETS: `${OTHER}@2027-01-31T00:00:00Z,,tooshort@2027-01-31T00:00:00Z` })).toEqual([
      'JWT_PREVIOUS_SECRETS: entry 2 of 3 is empty; separate secrets with single commas (value masked)',
      expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 3 of 3 must be at least 32 bytes of random data \(received 8 bytes, value masked\)/),
    ]);
  });

  test.each([
    ['AUTH_COOKIE_SECURE', '1'],
    ['AUTH_COOKIE_SECURE', 'TRUE'],
    ['PROXY_IP_BINDING', 'yes'],
    ['SESSION_IP_BINDING', 'on'],
    ['SESSION_IP_BINDING', '/24'],
    ['AUTH_PORT', '3001abc'],
    ['AUTH_PORT', '30.5'],
    ['SESSION_COOKIE_NAME', 'gw_csrf'],
    ['AUTH_TRUST_PROXY', '10.0.0.0/33'],
    ['AUTH_TRUST_PROXY', 'loopback,everyone'],
    ['BRAND_NAME', 'Acme\u0007'],
    ['AUTH_HOST', 'http://localhost'],
  ])('refuses %s=%j instead of defaulting it', (variable, value) => {
    const errors = errorsOf({ ...base, [variable]: value });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^${variable}: .*\\(received ${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
  });
});

describe('Tableau and custom sources', () => {
  const moduleFile = join(dir, 'my-source.mjs');
  writeFileSync(moduleFile, 'export default {};\n');

  test('reads the Tableau variables and drops a trailing slash from the URL', () => {
    expect(
      configOf({ ...base, TABLEAU_URL: 'https://tableau.example.com/', TABLEAU_SITE: 'finance', TABLEAU_API_VERSION: '3.19', TABLEAU_TIMEOUT_MS: '1500' }).tableau,
    ).toEqual({ url: 'https://tableau.example.com', site: 'finance', apiVersion: '3.19', timeoutMs: 1500, caPem: null });
  });

  test('defaults to the Default site, a detected API version and a 5 s timeout', () => {
    expect(configOf({ ...base, TABLEAU_URL: 'https://tableau.example.com', TABLEAU_SITE: '' }).tableau).toEqual({
      url: 'https://tableau.example.com',
      site: '',
      apiVersion: null,
      timeoutMs: 5000,
      caPem: null,
    });
  });

  test('reads TABLEAU_CA_FILE: the CAs trusted for an https Tableau, instead of the built-in list', () => {
    const caFile = join(dir, 'tableau-ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(configOf({ ...base, TABLEAU_URL: 'https://tableau.corp.example', TABLEAU_CA_FILE: caFile }).tableau?.caPem).toContain('-----BEGIN CERTIFICATE-----');
  });

  test.each([
    ['a missing file (typo, or ./certs not mounted)', () => join(dir, 'nope.pem'), 'https://tableau.corp.example', /^TABLEAU_CA_FILE: cannot read the file \(ENOENT\) \(received ".*nope\.pem"\)$/],
    ['a file without a certificate (a key, an empty file)', () => {
      const f = join(dir, 'not-a-ca.pem');
      writeFileSync(f, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
      return f;
    }, 'https://tableau.corp.example', /^TABLEAU_CA_FILE: must be a PEM file of CA certificates .*\(received ".*not-a-ca\.pem"\)$/],
    ['a CA for a plain-http Tableau (nothing to verify)', () => join(dir, 'nope.pem'), 'http://tableau.internal', /^TABLEAU_CA_FILE: only applies to an https TABLEAU_URL/],
    ['a CA without Tableau', () => join(dir, 'nope.pem'), undefined, /^TABLEAU_CA_FILE: only applies with TABLEAU_URL, which is not set/],
  ])('refuses TABLEAU_CA_FILE naming %s, with the other problems', (_name, file, url, problem) => {
    const env: Record<string, string> = { ...base, TABLEAU_CA_FILE: file(), LOG_LEVEL: 'loud', ALLOW_INSECURE_HTTP_IDP: 'true' };
    if (url !== undefined) env.TABLEAU_URL = url;
    const errors = errorsOf(env);
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(problem), expect.stringMatching(/^LOG_LEVEL: /)]));
    expect(errors).toHaveLength(2);
  });

  test('refuses plain http for Tableau (passwords travel to it) unless ALLOW_INSECURE_HTTP_IDP=true', () => {
    expect(errorsOf({ ...base, TABLEAU_URL: 'http://tableau.internal' })).toEqual([
      expect.stringMatching(/^TABLEAU_URL: must use https .*ALLOW_INSECURE_HTTP_IDP=true.*\(received "http:\/\/tableau.internal"\)$/),
    ]);
    const config = configOf({ ...base, TABLEAU_URL: 'http://tableau.internal', ALLOW_INSECURE_HTTP_IDP: 'true' });
    expect(config.allowInsecureHttpIdp).toBe(true);
    expect(config.tableau?.url).toBe('http://tableau.internal');
  });

  test('reports plain-http TABLEAU_URL together with the other config errors, not after them', () => {
    const errors = errorsOf({ ...base, TABLEAU_URL: 'http://tableau.internal', LOG_LEVEL: 'loud', SESSION_TTL_SECONDS: '5' });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^LOG_LEVEL: must be one of/),
        expect.stringMatching(/^SESSION_TTL_SECONDS: /),
        expect.stringMatching(/^TABLEAU_URL: must use https/),
      ]),
    );
    expect(errors).toHaveLength(3);
  });

  test('reads AUTH_CUSTOM_MODULE when it names an existing file', () => {
    expect(configOf({ ...base, AUTH_CUSTOM_MODULE: moduleFile }).customModule).toBe(moduleFile);
  });

  test.each([
    ['TABLEAU_URL', 'tableau.example.com', /must be an http\(s\) URL/],
    ['TABLEAU_URL', 'https://admin:pw@tableau.example.com', /without credentials/],
    ['TABLEAU_URL', 'ftp://tableau.example.com', /must be an http\(s\) URL/],
    ['TABLEAU_SITE', 'my site', /site content URL/],
    ['TABLEAU_API_VERSION', '3', /REST API version like 3.19/],
    ['TABLEAU_API_VERSION', '3.6', /at least 3.7/],
    ['TABLEAU_TIMEOUT_MS', '50', /from 100 to 60000/],
    ['TABLEAU_TIMEOUT_MS', '60001', /from 100 to 60000/],
    ['ALLOW_INSECURE_HTTP_IDP', 'yes', /must be one of true, false/],
  ])('refuses %s=%j', (variable, value, rule) => {
    const env: Env = { ...base, TABLEAU_URL: 'https://tableau.example.com', [variable]: value };
    const errors = errorsOf(env);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^${variable}: `));
    expect(errors[0]).toMatch(rule);
    expect(errors[0]).toContain(`(received ${JSON.stringify(value)})`);
  });

  test.each([
    ['a relative path', 'modules/my-source.mjs', /must be an absolute file path/],
    ['a missing file', '/nonexistent/my-source.mjs', /must name an existing file/],
    ['a directory', tmpdir(), /must name an existing file/],
  ])('refuses AUTH_CUSTOM_MODULE naming %s', (_case, value, rule) => {
    const errors = errorsOf({ ...base, AUTH_CUSTOM_MODULE: value });
    expect(errors).toEqual([expect.stringMatching(rule)]);
  });

  test('reports Tableau settings given without TABLEAU_URL, all at once', () => {
    expect(errorsOf({ ...base, TABLEAU_SITE: 'finance', TABLEAU_TIMEOUT_MS: '1000' })).toEqual([
      'TABLEAU_SITE: only applies with TABLEAU_URL, which is not set (received "finance")',
      'TABLEAU_TIMEOUT_MS: only applies with TABLEAU_URL, which is not set (received "1000")',
    ]);
  });
});

describe('AUTH_CHAIN', () => {
  const moduleFile = join(dir, 'chain-module.mjs');
  writeFileSync(moduleFile, 'export default { id: "x", async authenticate() { return { kind: "not-found" }; } };\n');
  const tableau = { TABLEAU_URL: 'https://tableau.example.com' };

  test.each([
    ['only local by default', {}, ['local']],
    ['configured sources in the default order', { ...tableau, AUTH_CUSTOM_MODULE: moduleFile }, ['local', 'tableau', 'custom']],
    ['the custom module placed first', { ...tableau, AUTH_CUSTOM_MODULE: moduleFile, AUTH_CHAIN: 'custom, local ,tableau' }, ['custom', 'local', 'tableau']],
    ['no local users at all', { ...tableau, AUTH_CHAIN: 'tableau' }, ['tableau']],
    ['an empty value means the default', { ...tableau, AUTH_CHAIN: '' }, ['local', 'tableau']],
  ])('%s', (_name, env, chain) => {
    expect(configOf({ ...base, ...env }).chain).toEqual(chain);
  });

  test('reports every chain problem at once', () => {
    const errors = errorsOf({ ...base, AUTH_CUSTOM_MODULE: moduleFile, AUTH_CHAIN: 'local,ldap,local,tableau' });
    expect(errors).toEqual([
      expect.stringMatching(/^AUTH_CHAIN: "ldap" is not a source; use local, tableau, custom/),
      expect.stringMatching(/^AUTH_CHAIN: "local" is listed twice/),
      expect.stringMatching(/^AUTH_CHAIN: "tableau" is not configured \(set TABLEAU_URL\)/),
      expect.stringMatching(/^AUTH_CHAIN: AUTH_CUSTOM_MODULE is set but "custom" is not in the chain/),
    ]);
  });
});

describe('NGINX_CONF_DIR (apps named by the nginx config)', () => {
  const gateConfig = join(dir, 'runtime', 'gate.json');
  const confDir = join(dir, 'nginx-apps');
  mkdirSync(join(confDir, 'sites'), { recursive: true });
  writeFileSync(join(confDir, 'sites', 'two.conf.template'), 'server {\n    set $gate_app finance;\n}\nserver {\n    set $gate_app hr;\n}\n');
  const appsPolicy = join(dir, 'apps-policy.yaml');
  writeFileSync(appsPolicy, 'default: allow\napps:\n  finance: { default: deny }\n  wiki: { default: allow }\n');

  test('refuses an app the policy lacks at start-up, with the file and line, among the other errors', () => {
    const errors = errorsOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: appsPolicy, NGINX_CONF_DIR: confDir });
    expect(errors).toEqual([`NGINX_CONF_DIR: ${confDir}/sites/two.conf.template:5: set $gate_app hr: the policy has no app 'hr' (apps: finance, wiki); add it under apps: or fix the name`]);
  });

  test('refuses named apps when no policy is configured, and says why', () => {
    const errors = errorsOf({ ...base, GATE_CONFIG_FILE: gateConfig, NGINX_CONF_DIR: confDir });
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(e).toContain('no access policy is configured (POLICY_FILE)');
  });

  test('warns about a policy app no config names', () => {
    const onlyFinance = join(dir, 'nginx-apps-finance');
    mkdirSync(onlyFinance, { recursive: true });
    writeFileSync(join(onlyFinance, 'a.conf'), 'set $gate_app finance;\n');
    const config = configOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: appsPolicy, NGINX_CONF_DIR: onlyFinance });
    expect(config.accessPolicy?.warnings).toEqual([`apps.wiki: no 'set $gate_app wiki;' in ${onlyFinance}; the rules of this app never apply`]);
  });

  test('names a missing folder', () => {
    expect(errorsOf({ ...base, GATE_CONFIG_FILE: gateConfig, NGINX_CONF_DIR: join(dir, 'nope') })).toEqual([`NGINX_CONF_DIR: ${join(dir, 'nope')}: cannot read the nginx config folder (no such folder)`]);
  });
});

describe('POLICY_FILE', () => {
  const gateConfig = join(dir, 'runtime', 'gate.json');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(
    policyFile,
    [
      'default: allow',
      'rules:',
      '  - id: healthz',
      '    path: { exact: /healthz }',
      '    methods: [GET]',
      '    priority: 1',
      '    decision: allow',
      '    public: true',
      '  - id: federation-members',
      '    path: { prefix: /federation }',
      '    priority: 10',
      '    decision: allow',
      '    conditions: { groups: [Federation] }',
      '  - id: federation-others',
      '    path: { prefix: /federation }',
      '    priority: 20',
      '    decision: deny',
    ].join('\n'),
  );
  const brokenFile = join(dir, 'broken-policy.yaml');
  writeFileSync(
    brokenFile,
    [
      'default: allow',
      'rules:',
      '  - id: one',
      '    path: { prefix: /a;b }',
      '    priority: 1',
      '    decision: deny',
      '  - id: two',
      '    path: { prefix: /x }',
      '    priority: 2',
      '    decision: allow',
      '    conditions: { sourceIps: [10.0.0.1/8] }',
      '  - id: three',
      '    path: { exact: /y }',
      '    priority: 3',
      '    decision: permit',
    ].join('\n'),
  );

  test('compiles a valid policy file at config load', () => {
    const config = configOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: policyFile });
    expect(config.accessPolicy).not.toBeNull();
    expect(config.accessPolicy?.file).toBe(policyFile);
    expect(config.accessPolicy?.warnings).toEqual([]);
    const compiled = config.accessPolicy!.compiled;
    expect(compiled.default).toBe('allow');
    expect(compiled.rules.map((r) => r.id)).toEqual(['healthz', 'federation-members', 'federation-others']);
    expect(compiled.prefix['/federation']).toEqual([1, 2]);
    expect(compiled.exact['/healthz']).toEqual([0]);
  });

  test('treats an empty POLICY_FILE as unset (no policy)', () => {
    expect(configOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: ' ' }).accessPolicy).toBeNull();
  });

  test('lists every policy problem, prefixed with POLICY_FILE and the file, together with the other config errors', () => {
    const errors = errorsOf({ ...base, AUTH_PORT: '70000', GATE_CONFIG_FILE: gateConfig, POLICY_FILE: brokenFile });
    const prefix = `POLICY_FILE: ${brokenFile}: `;
    expect(errors).toEqual([
      'AUTH_PORT: must be an integer from 0 to 65535 (received "70000")',
      expect.stringMatching(/^POLICY_FILE: .*rules\[0\] \(one\)\.path\.prefix: must not contain .*';'/),
      expect.stringMatching(/^POLICY_FILE: .*rules\[1\] \(two\)\.conditions\.sourceIps\.0: host bits are set/),
      expect.stringMatching(/^POLICY_FILE: .*rules\[2\] \(three\)\.decision: /),
    ]);
    for (const e of errors.slice(1)) expect(e.startsWith(prefix)).toBe(true);
  });

  test('refuses POLICY_FILE without GATE_CONFIG_FILE (nowhere to write the compiled policy)', () => {
    expect(errorsOf({ ...base, POLICY_FILE: policyFile })).toEqual([
      `POLICY_FILE: only applies with GATE_CONFIG_FILE (the compiled policy is written next to it) (received ${JSON.stringify(policyFile)})`,
    ]);
  });

  test('names a missing policy file clearly', () => {
    const missing = join(dir, 'no-such-policy.yaml');
    expect(errorsOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: missing })).toEqual([
      `POLICY_FILE: ${missing}: cannot read the policy file (no such file)`,
    ]);
  });

  test('names an unparsable policy file with the parser\'s first line', () => {
    const bad = join(dir, 'bad-policy.json');
    writeFileSync(bad, '{ "default": "allow", ');
    const errors = errorsOf({ ...base, GATE_CONFIG_FILE: gateConfig, POLICY_FILE: bad });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^POLICY_FILE: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the policy file \\(.+\\)$`));
  });
});

describe('PASSWORD_MIN_LENGTH (users CLI and demo seeding)', () => {
  test('is reported at start-up together with the other password settings', () => {
    expect(errorsOf({ ...base, PASSWORD_MIN_LENGTH: '6', PASSWORD_HASH_ALGORITHM: 'md5' })).toEqual([
      'PASSWORD_HASH_ALGORITHM: must be one of pbkdf2-sha512, argon2id (received "md5")',
      'PASSWORD_MIN_LENGTH: must be an integer from 8 (the least any standard allows) to 64 (received "6")',
    ]);
    expect(loadConfig({ ...base, PASSWORD_MIN_LENGTH: '16' }).ok).toBe(true);
  });
});

describe('session lifetimes and audit retention', () => {
  test('maxSessionAgeSeconds is SESSION_MAX_SECONDS; the token lifetime is SESSION_TOKEN_TTL_SECONDS (default 300)', () => {
    const config = configOf({ ...base, SESSION_MAX_SECONDS: '7200' });
    expect(maxSessionAgeSeconds(config)).toBe(7200);
    expect(config.session.ttlSeconds).toBe(300);
    expect(configOf({ ...base, SESSION_TOKEN_TTL_SECONDS: '60' }).session.ttlSeconds).toBe(60);
    expect(maxSessionAgeSeconds(configOf(base))).toBe(43_200);
  });

  test.each([
    ['a token lifetime above the idle limit', { SESSION_TOKEN_TTL_SECONDS: '3601' }, /^SESSION_TOKEN_TTL_SECONDS: must not exceed SESSION_IDLE_SECONDS \(3600\) \(received "3601"\)/],
    ['a token lifetime above a lowered idle limit', { SESSION_IDLE_SECONDS: '600', SESSION_TOKEN_TTL_SECONDS: '900' }, /^SESSION_TOKEN_TTL_SECONDS: must not exceed SESSION_IDLE_SECONDS \(600\)/],
    ['a one-second token lifetime', { SESSION_TOKEN_TTL_SECONDS: '1' }, /^SESSION_TOKEN_TTL_SECONDS: must be an integer from 2 to 86400 \(received "1"\)/],
  ])('refuses %s', (_name, vars, message) => {
    expect(errorsOf({ ...base, ...vars })).toEqual([expect.stringMatching(message)]);
  });

  test('still reads the old name SESSION_TTL_SECONDS, with a warning that names the new one', () => {
    const config = configOf({ ...base, SESSION_TTL_SECONDS: '3600' });
    expect(maxSessionAgeSeconds(config)).toBe(3600);
    expect(config.warnings).toEqual([expect.stringMatching(/SESSION_TTL_SECONDS is deprecated.*SESSION_MAX_SECONDS/)]);
  });

  test('accepts both names with the same value (a half-done rename), with the warning', () => {
    const config = configOf({ ...base, SESSION_TTL_SECONDS: '3600', SESSION_MAX_SECONDS: '3600' });
    expect(maxSessionAgeSeconds(config)).toBe(3600);
    expect(config.warnings).toHaveLength(1);
  });

  test.each([
    ['both names with different values', { SESSION_TTL_SECONDS: '3600', SESSION_MAX_SECONDS: '7200' }, /^SESSION_TTL_SECONDS: is the old name of SESSION_MAX_SECONDS.*"3600".*"7200"/],
    ['an idle limit above the default maximum', { SESSION_IDLE_SECONDS: '50000' }, /^SESSION_IDLE_SECONDS: must not exceed SESSION_MAX_SECONDS \(43200\) \(received "50000"\)$/],
    ['an idle limit above the set maximum', { SESSION_MAX_SECONDS: '600', SESSION_IDLE_SECONDS: '3600' }, /^SESSION_IDLE_SECONDS: must not exceed SESSION_MAX_SECONDS \(600\)/],
    ['an idle limit above the old-name maximum', { SESSION_TTL_SECONDS: '600', SESSION_IDLE_SECONDS: '3600' }, /^SESSION_IDLE_SECONDS: must not exceed SESSION_MAX_SECONDS \(600\)/],
    ['a maximum under a minute', { SESSION_MAX_SECONDS: '59' }, /^SESSION_MAX_SECONDS: must be an integer from 60 to 604800 \(received "59"\)$/],
    ['an idle limit that is not a number', { SESSION_IDLE_SECONDS: '1h' }, /^SESSION_IDLE_SECONDS: must be an integer from 60 to 604800 \(received "1h"\)$/],
    ['no retention at all', { AUDIT_RETENTION_DAYS: '0' }, /^AUDIT_RETENTION_DAYS: must be an integer from 1 to 3650 \(received "0"\)$/],
  ])('refuses %s', (_name, env, message) => {
    expect(errorsOf({ ...base, ...env })).toEqual([expect.stringMatching(message)]);
  });

  test('reports every lifetime problem at once', () => {
    const errors = errorsOf({ ...base, SESSION_TTL_SECONDS: '600', SESSION_MAX_SECONDS: '700', SESSION_IDLE_SECONDS: '5000', AUDIT_RETENTION_DAYS: 'x' });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^AUDIT_RETENTION_DAYS: /),
        expect.stringMatching(/^SESSION_TTL_SECONDS: is the old name/),
        expect.stringMatching(/^SESSION_IDLE_SECONDS: must not exceed SESSION_MAX_SECONDS \(700\)/),
      ]),
    );
  });
});

describe('PAYLOAD_GROUPS', () => {
  test('reads exact names, Prefix* patterns and *', () => {
    expect(configOf({ ...base, PAYLOAD_GROUPS: 'Finance, App-*' }).payloadGroups).toEqual({ all: false, exact: ['Finance'], prefixes: ['App-'] });
    expect(configOf({ ...base, PAYLOAD_GROUPS: '*' }).payloadGroups.all).toBe(true);
  });

  test('reports a misplaced * and an empty entry together with the other problems, naming the value', () => {
    const errors = errorsOf({ ...base, AUTH_PORT: '70000', PAYLOAD_GROUPS: 'A*B,,C' });
    expect(errors.some((e) => e.startsWith('AUTH_PORT:'))).toBe(true);
    expect(errors.filter((e) => e.startsWith('PAYLOAD_GROUPS:'))).toEqual([
      `PAYLOAD_GROUPS: entry 1 of 3 ("A*B") has a '*' that is not at the end; write an exact name, 'Prefix*' or '*' (received "A*B,,C")`,
      'PAYLOAD_GROUPS: entry 2 of 3 is empty; separate names with single commas (received "A*B,,C")',
    ]);
  });
});

describe('JWT_PREVIOUS_SECRETS retirement times', () => {
  const THIRD = randomBytes(48).toString('base64url');
  const at = (iso: string) => Date.parse(iso) / 1000;

  test('reads <secret>@<UTC time> for each previous key, in order', () => {
    const config = configOf({ ...base, JWT_PREVIOUS_SECRETS: `${OTHER}@2026-12-31T00:00:00Z,${THIRD}@2027-01-15T12:30:00.000Z` });
    expect(config.jwt.previousKeys).toEqual([
      { secret: OTHER, retiredAt: at('2026-12-31T00:00:00Z') },
      { secret: THIRD, retiredAt: at('2027-01-15T12:30:00Z') },
    ]);
    expect(config.jwt.previousSecrets).toEqual([OTHER, THIRD]);
  });

  test("splits at the last '@', so a secret may contain '@'", () => {
    const withAt = `${OTHER}@part`;
    expect(configOf({ ...base, JWT_PREVIOUS_SECRETS: `${withAt}@2026-12-31T00:00:00Z` }).jwt.previousKeys).toEqual([{ secret: withAt, retiredAt: at('2026-12-31T00:00:00Z') }]);
  });

  test('refuses a bare secret (no retirement time), naming the new format, without showing the secret', () => {
    const errors = errorsOf({ ...base, JWT_PREVIOUS_SECRETS: OTHER });
    expect(errors).toEqual([expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 1 of 1 has no retirement time; write each previous key as <secret>@<UTC time>, e\.g\. <secret>@2026-12-31T00:00:00Z/)]);
    expect(errors.join('\n')).not.toContain(OTHER);
  });

  test.each([
    ['a local time without Z', '2026-12-31T00:00:00'],
    ['an offset instead of UTC', '2026-12-31T01:00:00+01:00'],
    ['a date only', '2026-12-31'],
    ['an impossible date', '2026-02-30T00:00:00Z'],
    ['epoch seconds', '1798675200'],
    ['milliseconds other than .000', '2026-12-31T00:00:00.5Z'],
  ])('refuses %s as a retirement time, without showing the entry', (_name, time) => {
    const errors = errorsOf({ ...base, JWT_PREVIOUS_SECRETS: `${OTHER}@${time}` });
    expect(errors).toEqual([expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 1 of 1 has an invalid retirement time; write each previous key as <secret>@<UTC time>/)]);
    expect(errors.join('\n')).not.toContain(OTHER);
  });

  test('reports every bad entry together with the other variables', () => {
    const errors = errorsOf({ ...base, JWT_PREVIOUS_SECRETS: `${OTHER},${THIRD}@tomorrow,short@2026-12-31T00:00:00Z`, SESSION_IP_BINDING: 'nope', LOG_LEVEL: 'loud' });
    expect(errors).toHaveLength(5);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 1 of 3 has no retirement time/),
        expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 2 of 3 has an invalid retirement time/),
        expect.stringMatching(/^JWT_PREVIOUS_SECRETS: entry 3 of 3 must be at least 32 bytes/),
        expect.stringMatching(/^SESSION_IP_BINDING: must be one of exact, subnet, off \(received "nope"\)/),
        expect.stringMatching(/^LOG_LEVEL: /),
      ]),
    );
    expect(errors.join('\n')).not.toContain(OTHER);
    expect(errors.join('\n')).not.toContain(THIRD);
  });

  test('accepts a key whose retirement time has passed (the gate config leaves it out)', () => {
    expect(configOf({ ...base, JWT_PREVIOUS_SECRETS: `${OTHER}@2020-01-01T00:00:00Z` }).jwt.previousKeys).toEqual([{ secret: OTHER, retiredAt: at('2020-01-01T00:00:00Z') }]);
  });
});

describe('SESSION_IP_BINDING', () => {
  test.each([
    [{}, 'exact'],
    [{ SESSION_IP_BINDING: 'exact' }, 'exact'],
    [{ SESSION_IP_BINDING: 'subnet' }, 'subnet'],
    [{ SESSION_IP_BINDING: 'off' }, 'off'],
    [{ PROXY_IP_BINDING: 'on' }, 'exact'],
    [{ PROXY_IP_BINDING: 'off' }, 'off'],
  ])('reads %j as %s', (env, expected) => {
    expect(configOf({ ...base, ...env }).session.ipBinding).toBe(expected);
  });

  test('refuses both names at once (which one would win is not obvious)', () => {
    expect(errorsOf({ ...base, SESSION_IP_BINDING: 'subnet', PROXY_IP_BINDING: 'on' })).toEqual([
      'PROXY_IP_BINDING: set SESSION_IP_BINDING or the older PROXY_IP_BINDING, not both (received "on")',
    ]);
  });
});

describe('cookies over https (PUBLIC_BASE_URL)', () => {
  test('an https PUBLIC_BASE_URL makes the session cookie __Host-gw_session and Secure', () => {
    const config = configOf({ ...base, PUBLIC_BASE_URL: 'https://gw.example.com' });
    expect(config.session).toMatchObject({ cookieName: '__Host-gw_session', cookieSecure: true });
  });
  test('plain http keeps gw_session (a __Host- cookie needs a secure origin)', () => {
    expect(configOf({ ...base, PUBLIC_BASE_URL: 'http://gw.test', AUTH_COOKIE_SECURE: 'false' }).session).toMatchObject({ cookieName: 'gw_session', cookieSecure: false });
    expect(configOf(base).session.cookieName).toBe('gw_session');
  });
  test('an explicit SESSION_COOKIE_NAME is kept as given, and made Secure', () => {
    expect(configOf({ ...base, PUBLIC_BASE_URL: 'https://gw.example.com', SESSION_COOKIE_NAME: 'app_sess' }).session).toMatchObject({ cookieName: 'app_sess', cookieSecure: true });
  });
  test('refuses AUTH_COOKIE_SECURE=false with https: the browser would drop every cookie', () => {
    expect(errorsOf({ ...base, PUBLIC_BASE_URL: 'https://gw.example.com', AUTH_COOKIE_SECURE: 'false' })).toEqual([
      'AUTH_COOKIE_SECURE: must not be false when PUBLIC_BASE_URL is https (the cookies are then Secure and named __Host-...) (received "false")',
    ]);
  });
  test('the session cookie may not take the CSRF cookie\'s __Host- name either', () => {
    expect(errorsOf({ ...base, SESSION_COOKIE_NAME: '__Host-gw_csrf' })[0]).toMatch(/^SESSION_COOKIE_NAME: must not be gw_csrf or __Host-gw_csrf/);
  });
});

describe('METRICS_PORT and METRICS_HOST', () => {
  test('metrics are off by default, and on loopback when only the port is set', () => {
    expect(configOf(base).metrics).toBeNull();
    expect(configOf({ ...base, METRICS_PORT: '9464' }).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(configOf({ ...base, METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' }).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
  });

  test('refuses the public port, a bad port and a bad host', () => {
    expect(errorsOf({ ...base, AUTH_PORT: '3001', METRICS_PORT: '3001' })).toEqual([
      'METRICS_PORT: must differ from AUTH_PORT (metrics never go on the port nginx proxies) (received "3001")',
    ]);
    expect(errorsOf({ ...base, METRICS_PORT: '3001' })).toHaveLength(1);
    expect(errorsOf({ ...base, METRICS_HOST: '0.0.0.0', METRICS_PORT: '99999' })).toEqual([
      'METRICS_PORT: must be an integer from 0 to 65535 (received "99999")',
    ]);
    expect(errorsOf({ ...base, METRICS_HOST: 'bad host!' })).toEqual(['METRICS_HOST: must be an IP address or a host name (received "bad host!")']);
    // Compose sets the host for the container whether or not METRICS_PORT turns metrics on.
    expect(configOf({ ...base, METRICS_HOST: '0.0.0.0' }).metrics).toBeNull();
  });
});

describe('single sign-on (SESSION_COOKIE_DOMAIN, APP_ORIGINS, SSO_HANDOFF_TTL_SECONDS)', () => {
  const https = { ...base, PUBLIC_BASE_URL: 'https://auth.corp.example' };
  test('a cookie domain over https makes the default name __Secure-gw_session', () => {
    const config = configOf({ ...https, SESSION_COOKIE_DOMAIN: 'corp.example' });
    expect(config.sso.cookieDomain).toBe('corp.example');
    expect(config.session.cookieName).toBe('__Secure-gw_session');
  });
  test('APP_ORIGINS are kept, without the sign-in host itself', () => {
    const config = configOf({ ...https, APP_ORIGINS: 'https://app.other.example, https://auth.corp.example', SSO_HANDOFF_TTL_SECONDS: '10' });
    expect(config.sso).toEqual({ cookieDomain: null, appOrigins: ['https://app.other.example'], handoffTtlSeconds: 10 });
  });
  test('every problem at once, each with its variable and the value received', () => {
    const errors = errorsOf({ ...base, SESSION_COOKIE_DOMAIN: 'com', APP_ORIGINS: 'https://a.example/', SSO_HANDOFF_TTL_SECONDS: '300' });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SSO_HANDOFF_TTL_SECONDS: must be an integer from 5 to 120 \(received "300"\)/),
        'SESSION_COOKIE_DOMAIN: needs PUBLIC_BASE_URL (the sign-in host, which must lie under this domain) (received "com")',
        'APP_ORIGINS: needs PUBLIC_BASE_URL (the sign-in host that hands sessions to these origins) (received "https://a.example/")',
      ]),
    );
  });
  test('a public suffix, a domain the sign-in host is not under, a __Host- name', () => {
    expect(errorsOf({ ...https, SESSION_COOKIE_DOMAIN: 'example' })).toEqual([expect.stringMatching(/^SESSION_COOKIE_DOMAIN: must not be a top-level domain/)]);
    expect(errorsOf({ ...https, SESSION_COOKIE_DOMAIN: 'other.example' })).toEqual([expect.stringMatching(/^SESSION_COOKIE_DOMAIN: must be PUBLIC_BASE_URL's host \(auth.corp.example\)/)]);
    expect(errorsOf({ ...https, SESSION_COOKIE_DOMAIN: 'corp.example', SESSION_COOKIE_NAME: '__Host-sso' })).toEqual([expect.stringMatching(/^SESSION_COOKIE_NAME: must not start with __Host- when SESSION_COOKIE_DOMAIN is set/)]);
  });
});
