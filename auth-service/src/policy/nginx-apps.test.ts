import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { compilePolicy } from './compile-policy.js';
import { lintNginxApps, scanNginxApps } from './nginx-apps.js';

const NOW = Date.UTC(2026, 0, 15) / 1000;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A folder with `files` (relative path → text). */
function confDir(files: { [file: string]: string }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-apps-'));
  dirs.push(dir);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

function policyWithApps(...names: string[]) {
  const apps: { [name: string]: unknown } = {};
  for (const n of names) apps[n] = { default: 'allow', rules: [] };
  const r = compilePolicy({ default: 'allow', rules: [], apps }, { now: NOW });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.compiled;
}

const TWO_APPS = `
server {
    server_name finance.localhost;
    set $gate_app finance;
    location / { include snippets/protect.conf; proxy_pass http://finance; }
}
server {
    server_name hr.localhost;
    location / {
        set $gate_app "hr";   # quoted works too
        include snippets/protect.conf;
    }
    # set $gate_app commented-out;
}
`;

describe('scanNginxApps', () => {
  it('finds set $gate_app in .conf and .conf.template files, in sub-folders, with file and line, and skips comments', () => {
    const dir = confDir({ 'sites/two-apps.conf.template': TWO_APPS, 'snippets/x.conf': 'set $gate_app wiki;\n', 'README.md': 'set $gate_app ignored;' });
    const scan = scanNginxApps(dir);
    expect(scan.errors).toEqual([]);
    expect(scan.refs).toEqual([
      { name: 'finance', file: 'sites/two-apps.conf.template', line: 4 },
      { name: 'hr', file: 'sites/two-apps.conf.template', line: 10 },
      { name: 'wiki', file: 'snippets/x.conf', line: 1 },
    ]);
  });

  it.each([
    ['a variable (the app must be a literal the check can see)', 'set $gate_app $host;'],
    ['upper-case letters', 'set $gate_app Finance;'],
    ['a dot', 'set $gate_app fin.ance;'],
    ['a leading underscore (could name an Object member such as __proto__)', 'set $gate_app __proto__;'],
  ])('refuses %s', (_name, line) => {
    const scan = scanNginxApps(confDir({ 'a.conf': line + '\n' }));
    expect(scan.refs).toEqual([]);
    expect(scan.errors).toHaveLength(1);
    expect(scan.errors[0]).toMatch(/^a\.conf:1: set \$gate_app .*not an app name/);
  });

  it('accepts the empty name (the default app) without asking the policy for it', () => {
    const dir = confDir({ 'a.conf': 'set $gate_app "";\n' });
    expect(lintNginxApps(dir, policyWithApps()).errors).toEqual([]);
  });

  it('does not take $gate_application for $gate_app', () => {
    expect(scanNginxApps(confDir({ 'a.conf': 'set $gate_application x;\n' })).refs).toEqual([]);
  });
});

describe('lintNginxApps', () => {
  it('passes when every named app has a policy section', () => {
    const dir = confDir({ 'two.conf': TWO_APPS });
    expect(lintNginxApps(dir, policyWithApps('finance', 'hr'))).toMatchObject({ errors: [], warnings: [] });
  });

  it('refuses a name the policy lacks, naming the file, the line and the apps it has', () => {
    const dir = confDir({ 'two.conf': TWO_APPS });
    const out = lintNginxApps(dir, policyWithApps('finance'));
    expect(out.errors).toEqual([`${dir}/two.conf:10: set $gate_app hr: the policy has no app 'hr' (apps: finance); add it under apps: or fix the name`]);
  });

  it('refuses every named app when no policy is configured, and says so', () => {
    const dir = confDir({ 'two.conf': TWO_APPS });
    const out = lintNginxApps(dir, null);
    expect(out.errors).toHaveLength(2);
    expect(out.errors[0]).toContain('no access policy is configured (POLICY_FILE)');
    expect(out.errors[0]).toContain('403 app-unknown');
  });

  it('warns about a policy app no config names', () => {
    const dir = confDir({ 'two.conf': TWO_APPS });
    const out = lintNginxApps(dir, policyWithApps('finance', 'hr', 'payroll'));
    expect(out.errors).toEqual([]);
    expect(out.warnings).toEqual([`apps.payroll: no 'set $gate_app payroll;' in ${dir}; the rules of this app never apply`]);
  });

  it('reports an unreadable folder as one error', () => {
    expect(lintNginxApps('/nonexistent/nginx', null).errors).toEqual(['/nonexistent/nginx: cannot read the nginx config folder (no such folder)']);
  });

  it('finds no app in the repo\'s own nginx/ (the default app only)', () => {
    const out = lintNginxApps(path.resolve('nginx'), policyWithApps());
    expect(out.errors).toEqual([]);
    expect(out.refs.filter((r) => r.name !== '')).toEqual([]);
  });
});
