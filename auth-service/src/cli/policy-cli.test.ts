import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { createFreshDatabase, type FreshDatabase } from '../../../tests/support/fresh-database.js';
import { createPool, runMigrations } from '../storage/db.js';
import { createUsersRepo } from '../storage/users-repo.js';
import { runPolicyCli } from './policy-cli.js';

const SHIPPED_POLICY = fileURLToPath(new URL('../../../nginx/policy.yaml', import.meta.url));
const NOW = Date.UTC(2026, 0, 15, 12); // frozen clock: 2026-01-15T12:00Z (a Thursday)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'policy-cli-'));

function writePolicy(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runPolicyCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    now: () => NOW,
  });
  return { code, stdout, stderr };
}

const kirk = JSON.stringify({ sub: 'u1', username: 'kirk', groups: ['Federation'], src: 'local' });
const mccoy = JSON.stringify({ sub: 'u2', username: 'mccoy', groups: [], src: 'local' });

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('policy lint', () => {
  it('accepts the shipped nginx/policy.yaml', async () => {
    const r = await cli(['lint', '--file', SHIPPED_POLICY]);
    expect(r).toEqual({ code: 0, stdout: `ok: 3 rules (${SHIPPED_POLICY}, default allow)\n`, stderr: '' });
  });

  it('takes the file from POLICY_FILE when --file is absent', async () => {
    const r = await cli(['lint'], { POLICY_FILE: SHIPPED_POLICY });
    expect([r.code, r.stdout.startsWith('ok: 3 rules')]).toEqual([0, true]);
  });

  it('accepts every commented example in the shipped policy once uncommented', async () => {
    const text = fs.readFileSync(SHIPPED_POLICY, 'utf8');
    const start = text.indexOf('  # - id: reports-read-only');
    expect(start).toBeGreaterThan(0);
    const uncommented = text.slice(0, start) + text.slice(start).replace(/^ {2}# ?/gm, '  ');
    const r = await cli(['lint', '--file', writePolicy('examples.yaml', uncommented)]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^ok: 9 rules /);
  });

  it('reports every error of a broken file at once and exits 1', async () => {
    const file = writePolicy(
      'broken.yaml',
      [
        'default: maybe',
        'rules:',
        '  - { id: a, path: { prefix: /federation }, priority: 10, decision: allow }',
        '  - { id: b, path: { prefix: /federation/bridge }, priority: 10, decision: deny }',
        '  - { id: c, path: { exact: /x/../y }, priority: 1, decision: allow }',
        "  - { id: d, path: { prefix: /d }, priority: 1, decision: allow, conditions: { sourceIps: ['10.0.0.1/8'] } }",
        '',
      ].join('\n'),
    );
    const r = await cli(['lint', '--file', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // The top-level error stops the compiler before it looks at rules, so fix that one first...
    expect(r.stderr).toMatch(/^error: policy\.default: /);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('default: maybe', 'default: deny'));
    const again = await cli(['lint', '--file', file]);
    const lines = again.stderr.trim().split('\n');
    expect(again.code).toBe(1);
    // ...then every rule problem comes out in one run.
    expect(lines).toEqual([
      expect.stringMatching(/^error: rules\[2\] \(c\)\.path\.exact: '\.' and '\.\.' segments/),
      expect.stringMatching(/^error: rules\[3\] \(d\)\.conditions\.sourceIps\.0: host bits are set/),
      "error: rules 'a' and 'b' overlap at the same priority 10; give one a lower number",
      `${file}: 3 errors`,
    ]);
  });

  it.each([
    ['a missing file', 'missing.yaml', /^error: cannot read policy file .*missing\.yaml: ENOENT/],
    ['an unsupported extension', 'policy.txt', /^error: cannot read policy file .*policy\.txt: policy file must end in \.json, \.yaml or \.yml/],
  ])('refuses %s with exit 1', async (_name, file, message) => {
    const r = await cli(['lint', '--file', path.join(tmp, file)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it('prints compiler warnings after the ok line', async () => {
    const r = await cli(['lint', '--file', writePolicy('nodefault.json', JSON.stringify({ rules: [] }))]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`ok: 0 rules (${path.join(tmp, 'nodefault.json')}, default deny)\nwarning: policy: no 'default' given; requests matching no rule are denied\n`);
  });
});

describe('policy check with claims (seed scenario on the shipped policy)', () => {
  const cases: [string, string[], string][] = [
    ['lets kirk (group Federation) reach /federation', ['--path', '/federation', '--claims', kirk], 'allow (rule federation-members)\n'],
    ['keeps mccoy (no groups) out of /federation/bridge', ['--path', '/federation/bridge', '--claims', mccoy], 'deny (rule federation-others)\n'],
    ['keeps mccoy out of a case variant (/FEDERATION)', ['--path', '/FEDERATION', '--claims', mccoy], 'deny (rule federation-others)\n'],
    ['does not treat /federationX as /federation', ['--path', '/federationX', '--claims', mccoy], 'allow (rule default)\n'],
    ['lets anyone reach /healthz without a login', ['--path', '/healthz'], 'allow (rule healthz), public: no login needed\n'],
    ['extends the GET-only public rule to HEAD', ['--path', '/healthz', '--method', 'head'], 'allow (rule healthz), public: no login needed\n'],
    [
      'says an anonymous request outside public rules is sent to the login',
      ['--path', '/bridge'],
      'allow (rule default), but no public rule matched: an anonymous request is sent to the login first\n',
    ],
    ['never lets an anonymous request satisfy a group condition', ['--path', '/federation'], 'deny (rule federation-others)\n'],
  ];
  it.each(cases)('%s', async (_name, args, expected) => {
    expect(await cli(['check', '--file', SHIPPED_POLICY, ...args])).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it.each([
    ['a percent escape', '/feder%61tion'],
    ['a double slash', '//federation'],
    ['a dot segment', '/./federation'],
    ['a dot-dot segment', '/x/../federation'],
  ])('warns that nginx would normalise a path with %s first', async (_name, p) => {
    const r = await cli(['check', '--file', SHIPPED_POLICY, '--path', p, '--claims', mccoy]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: --path .* is not normalised; nginx decodes/);
  });
});

describe('policy check --at with a time window', () => {
  const file = writePolicy(
    'office.yaml',
    [
      'default: deny',
      'rules:',
      '  - id: office-hours',
      '    path: { prefix: /payroll }',
      '    priority: 1',
      '    decision: allow',
      '    conditions:',
      '      time: { days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", timeZone: Europe/Berlin }',
      '  - id: lan-only',
      '    path: { prefix: /lan }',
      '    priority: 1',
      '    decision: allow',
      '    conditions: { sourceIps: [10.0.0.0/8] }',
      '',
    ].join('\n'),
  );
  const cases: [string, string[], string][] = [
    ['allows inside the window (Berlin winter: 07:30Z is 08:30 local)', ['--at', '2026-03-27T07:30:00Z'], 'allow (rule office-hours)\n'],
    ['denies before the window (06:30Z is 07:30 local)', ['--at', '2026-03-27T06:30:00Z'], 'deny (rule default)\n'],
    ['follows DST (after 29 March, 06:30Z is 08:30 local)', ['--at', '2026-03-30T06:30:00Z'], 'allow (rule office-hours)\n'],
    ['reads an explicit offset', ['--at', '2026-03-30T17:59:00+02:00'], 'allow (rule office-hours)\n'],
    ['denies on a Saturday', ['--at', '2026-03-28T10:00:00Z'], 'deny (rule default)\n'],
    ['uses the injected clock without --at (Thursday 13:00 Berlin)', [], 'allow (rule office-hours)\n'],
    ['compiles as of --at, so a date years ahead is still evaluated', ['--at', '2035-06-05T10:00:00Z'], 'allow (rule office-hours)\n'],
  ];
  it.each(cases)('%s', async (_name, args, expected) => {
    expect(await cli(['check', '--file', file, '--path', '/payroll/q1', '--claims', kirk, ...args])).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it.each([
    ['matches a client inside the CIDR', '10.1.2.3', 'allow (rule lan-only)\n'],
    ['refuses a client outside it', '192.0.2.1', 'deny (rule default)\n'],
  ])('--ip %s', async (_name, ip, expected) => {
    expect((await cli(['check', '--file', file, '--path', '/lan', '--claims', kirk, '--ip', ip])).stdout).toBe(expected);
  });
});

describe('policy check --user (real PostgreSQL)', () => {
  let database: FreshDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await createFreshDatabase();
    pool = createPool(database.url, { max: 1 });
    await runMigrations(pool);
    const repo = createUsersRepo(pool);
    await repo.create({ username: 'Kirk', passwordHash: 'not-used-here', email: 'kirk@starfleet.example', fullName: 'James T. Kirk', groups: ['Federation'] });
    await repo.create({ username: 'mccoy', passwordHash: 'not-used-here', groups: [] });
  });

  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  const env = () => ({ DATABASE_URL: database.url });

  it.each([
    ['lets kirk from the store reach /federation (usernames are case-insensitive)', 'kirk', '/federation', 'allow (rule federation-members)\n'],
    ['keeps mccoy from the store out of /federation/bridge', 'mccoy', '/federation/bridge', 'deny (rule federation-others)\n'],
  ])('%s', async (_name, user, p, expected) => {
    expect(await cli(['check', '--file', SHIPPED_POLICY, '--user', user, '--path', p], env())).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it('builds the same claims as a local login (email, name, src) for claim conditions', async () => {
    const file = writePolicy(
      'claims.json',
      JSON.stringify({
        default: 'deny',
        rules: [{ id: 'starfleet', path: { prefix: '/' }, priority: 1, decision: 'allow', conditions: { claims: { email_domain: 'StarFleet.example', src: 'local', name: 'James T. Kirk' } } }],
      }),
    );
    expect((await cli(['check', '--file', file, '--user', 'KIRK', '--path', '/'], env())).stdout).toBe('allow (rule starfleet)\n');
  });

  it('refuses an unknown user with exit 1', async () => {
    expect(await cli(['check', '--file', SHIPPED_POLICY, '--user', 'khan', '--path', '/federation'], env())).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: no user named "khan"\n',
    });
  });
});

describe('usage errors exit 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['no command', [], /^error: no command given/],
    ['an unknown command', ['deploy'], /^error: unknown command "deploy"/],
    ['an unknown option', ['lint', '--force'], /^error: unknown option --force for "lint"/],
    ['an extra argument', ['lint', 'extra'], /^error: unexpected argument "extra"/],
    ['check without --path', ['check'], /^error: "check" needs --path/],
    ['a relative path', ['check', '--path', 'federation'], /^error: --path must start with '\/'/],
    ['a query string in the path', ['check', '--path', '/federation?x=1'], /query string is never part of the path/],
    ['--user and --claims together', ['check', '--path', '/', '--user', 'kirk', '--claims', kirk], /^error: give --user or --claims, not both/],
    ['claims that are not JSON', ['check', '--path', '/', '--claims', '{kirk}'], /^error: --claims is not valid JSON/],
    ['claims that are not an object', ['check', '--path', '/', '--claims', '["Federation"]'], /^error: --claims must be a JSON object/],
    ['a bad IP address', ['check', '--path', '/', '--ip', '10.0.0.300'], /^error: --ip must be an IPv4 or IPv6 address/],
    ['a time without a zone', ['check', '--path', '/', '--at', '2026-03-27T08:30:00'], /^error: --at must be an ISO time with a zone/],
    ['a bad method', ['check', '--path', '/', '--method', 'GE T'], /^error: --method must be an HTTP method/],
    ['an option without its value', ['check', '--path'], /^error: option --path needs a value/],
  ];
  it.each(cases)('%s', async (_name, argv, message) => {
    const r = await cli(argv);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toMatch(message);
  });

  it('prints the help, which says how the path is read', async () => {
    const r = await cli(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("normalised $uri");
    expect(r.stdout).toContain("';params' are cut");
  });
});

describe('policy compile', () => {
  it('writes the compiled policy the gate loads, atomically, and says to reload', async () => {
    const out = path.join(tmp, 'runtime-policy.json');
    const r = await cli(['compile', '--file', SHIPPED_POLICY, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`compiled: 3 rules (${SHIPPED_POLICY}, default allow) -> ${out}; reload nginx to apply\n`);
    const compiled = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(compiled).toMatchObject({ version: 1, default: 'allow', regex: [] });
    expect(compiled.rules.map((rule: { id: string }) => rule.id)).toEqual(['healthz', 'federation-members', 'federation-others']);
    expect(Object.keys(compiled.prefix)).toEqual(['/federation']);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses an invalid policy without touching the output file', async () => {
    const out = path.join(tmp, 'kept.json');
    fs.writeFileSync(out, '{"version":1,"off":true}\n');
    const bad = writePolicy('bad-compile.yaml', 'default: maybe\nrules:\n  - { id: a, path: { prefix: /a }, priority: 1, decision: allow, colour: red }\n');
    const r = await cli(['compile', '--file', bad, '--out', out]);
    expect(r.code).toBe(1);
    // The bad top-level default and the bad rule are both reported: one does not hide the other.
    expect(r.stderr).toMatch(/colour/);
    expect(r.stderr).toMatch(/policy\.default/);
    expect(r.stderr).toMatch(/2 errors/);
    expect(fs.readFileSync(out, 'utf8')).toBe('{"version":1,"off":true}\n');
  });

  it('needs --out (usage error, exit 2)', async () => {
    const r = await cli(['compile', '--file', SHIPPED_POLICY]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs --out/);
  });
});

describe('policy check: the gate\'s path rules', () => {
  it('cuts ;params like the gate (no bypass of /federation with ;x=1)', async () => {
    const r = await cli(['check', '--file', SHIPPED_POLICY, '--claims', mccoy, '--path', '/federation;x=1']);
    expect([r.code, r.stdout]).toEqual([0, 'deny (rule federation-others)\n']);
  });

  it.each(['/public/..;/federation', '/public\\..\\federation'])('reports %s as ambiguous (400 in the gate)', async (p) => {
    const r = await cli(['check', '--file', SHIPPED_POLICY, '--claims', kirk, '--path', p]);
    expect([r.code, r.stdout]).toEqual([0, 'bad-request (path-ambiguous): the gate answers 400 before any rule is looked at\n']);
  });
});

describe('policy check: Unicode paths and identities, as the gate decides them', () => {
  const unicode = writePolicy(
    'unicode.yaml',
    [
      'default: allow',
      'rules:',
      '  - { id: aerzte, path: { prefix: "/\u00e4rzte" }, priority: 1, decision: deny }',
      '  - { id: cafe, path: { exact: "/caf\u00e9" }, priority: 2, decision: deny }',
      '  - { id: admins, path: { prefix: /admin }, priority: 3, decision: allow, conditions: { users: [kirk] } }',
      '  - { id: admin-others, path: { prefix: /admin }, priority: 4, decision: deny }',
      '',
    ].join('\n'),
  );
  it.each([
    ['/\u00c4rzte', 'deny (rule aerzte)\n'],
    ['/CAF\u00c9', 'deny (rule cafe)\n'],
    ['/caf\u00e9', 'deny (rule cafe)\n'],
  ])('folds %s like the gate', async (p, expected) => {
    expect((await cli(['check', '--file', unicode, '--claims', mccoy, '--path', p])).stdout).toBe(expected);
  });

  it.each(['/federat\u0131on', '/\u017fecret', '/\u212aeys'])('reports %s as ambiguous, as the gate does', async (p) => {
    const r = await cli(['check', '--file', SHIPPED_POLICY, '--claims', mccoy, '--path', p]);
    expect(r.stdout).toBe('bad-request (path-ambiguous): the gate answers 400 before any rule is looked at\n');
  });

  it('reports a path over the limit as path-too-long', async () => {
    const r = await cli(['check', '--file', SHIPPED_POLICY, '--claims', mccoy, '--path', '/' + 'a'.repeat(2048)]);
    expect(r.stdout).toBe('bad-request (path-too-long): the gate answers 400 for paths over 2048 bytes\n');
  });

  it('does not give an OIDC account named kirk the rule written for the local kirk', async () => {
    const oidcKirk = JSON.stringify({ sub: '00u1a2b3', username: 'kirk', groups: [], src: 'oidc' });
    expect((await cli(['check', '--file', unicode, '--claims', kirk, '--path', '/admin'])).stdout).toBe('allow (rule admins)\n');
    expect((await cli(['check', '--file', unicode, '--claims', oidcKirk, '--path', '/admin'])).stdout).toBe('deny (rule admin-others)\n');
  });

  it('refuses --user for a non-local source with a pointer to --claims', async () => {
    const r = await cli(['check', '--file', unicode, '--user', 'oidc:00u1a2b3', '--path', '/admin']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --user takes a local user \('kirk' or 'local:kirk'\); .*--claims/);
  });
});

describe('apps (--app, --nginx)', () => {
  const appsPolicy = () =>
    writePolicy(
      'apps.yaml',
      [
        'default: allow',
        'rules:',
        '  - { id: federation-others, path: { prefix: /federation }, priority: 20, decision: deny }',
        'apps:',
        '  finance:',
        '    default: deny',
        '    rules:',
        '      - { id: reports, path: { prefix: /reports }, priority: 10, decision: allow, conditions: { groups: [Federation] } }',
        '  hr:',
        '    default: allow',
      ].join('\n'),
    );
  const nginxDir = (lines: string[]) => {
    const dir = fs.mkdtempSync(path.join(tmp, 'nginx-'));
    fs.writeFileSync(path.join(dir, 'apps.conf'), lines.join('\n') + '\n');
    return dir;
  };

  it.each([
    ['finance lets kirk (Federation) into /reports', ['--app', 'finance', '--claims', kirk, '--path', '/reports/q3'], 'allow (rule reports)\n'],
    ['finance refuses mccoy by its own default', ['--app', 'finance', '--claims', mccoy, '--path', '/reports/q3'], 'deny (rule default)\n'],
    ['hr ignores the default app\'s /federation rule', ['--app', 'hr', '--claims', mccoy, '--path', '/federation'], 'allow (rule default)\n'],
    ['the default app keeps its own rules', ['--claims', mccoy, '--path', '/federation'], 'deny (rule federation-others)\n'],
    ['an app the policy lacks is refused as in the gate', ['--app', 'payroll', '--claims', kirk, '--path', '/'], "deny (app-unknown): the policy has no app 'payroll' (apps: finance, hr); the gate answers 403\n"],
  ])('check: %s', async (_name, args, expected) => {
    const r = await cli(['check', '--file', appsPolicy(), ...args]);
    expect([r.code, r.stdout]).toEqual([0, expected]);
  });

  it('check refuses an --app that is not an app name (exit 2)', async () => {
    const r = await cli(['check', '--file', appsPolicy(), '--app', 'Fin ance', '--path', '/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--app must be an app name');
  });

  it('lint lists the apps, and with --nginx accepts a config naming only known apps', async () => {
    const r = await cli(['lint', '--file', appsPolicy(), '--nginx', nginxDir(['set $gate_app finance;', 'set $gate_app hr;'])]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('apps: finance (1 rule, default deny), hr (0 rules, default allow)');
    expect(r.stdout).not.toContain('warning');
  });

  it('lint --nginx refuses an app the policy lacks (exit 1) and warns about an app no config names', async () => {
    const dir = nginxDir(['set $gate_app finance;', 'set $gate_app payroll;']);
    const r = await cli(['lint', '--file', appsPolicy(), '--nginx', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${dir}/apps.conf:2: set $gate_app payroll: the policy has no app 'payroll' (apps: finance, hr)`);
    const ok = await cli(['lint', '--file', appsPolicy()], { NGINX_CONF_DIR: nginxDir(['set $gate_app finance;']) });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("warning: apps.hr: no 'set $gate_app hr;' in");
  });

  it('compile --nginx writes nothing when the config names an unknown app', async () => {
    const out = path.join(tmp, 'apps-policy.json');
    const r = await cli(['compile', '--file', appsPolicy(), '--out', out, '--nginx', nginxDir(['set $gate_app payroll;'])]);
    expect(r.code).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
    const good = await cli(['compile', '--file', appsPolicy(), '--out', out, '--nginx', nginxDir(['set $gate_app finance;', 'set $gate_app hr;'])]);
    expect(good.code).toBe(0);
    expect(Object.keys(JSON.parse(fs.readFileSync(out, 'utf8')).apps)).toEqual(['finance', 'hr']);
  });
});
