/**
 * The apps the nginx config names: every `set $gate_app NAME;` in the *.conf and *.conf.template
 * files under a folder (NGINX_CONF_DIR; `npm run policy -- lint --nginx DIR`), checked against the
 * policy's `apps:` sections. The nginx config is the source of truth for which location is which
 * app; this check makes a name the policy lacks a config error before nginx ever serves it (the gate
 * also refuses such a request at run time, 403 `app-unknown`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CompiledPolicy } from '../../../njs/src/core/policy-contract.js';
import { APP_NAME } from './parse-policy.js';

/** One `set $gate_app NAME;` line. `name` is '' for `set $gate_app "";` (the default app). */
export interface AppReference {
  name: string;
  /** Path relative to the scanned folder. */
  file: string;
  line: number;
}

export interface NginxAppsScan {
  refs: AppReference[];
  /** Lines that set $gate_app to something that is not a plain app name (a variable, bad characters). */
  errors: string[];
}

// `set $gate_app finance;`, `set $gate_app "finance";`; a value that is not one plain word is caught below.
const SET_GATE_APP = /(?:^|[\s;{}])set\s+\$gate_app(?![A-Za-z0-9_])\s*([^;]*);?/g;

function isConfigFile(name: string): boolean {
  return name.endsWith('.conf') || name.endsWith('.conf.template');
}

/** Config files under `dir`, recursively, sorted; symbolic links to folders are not followed. */
function listConfigFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    const entries = readdirSync(at, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = path.join(at, e.name);
      if (e.isDirectory()) walk(full);
      else if ((e.isFile() || e.isSymbolicLink()) && isConfigFile(e.name)) out.push(full);
    }
  };
  walk(dir);
  return out;
}

/**
 * Finds every `set $gate_app ...;` under `dir`. Comments (`#` to the end of the line) are skipped.
 * Throws when `dir` cannot be read (a wrong NGINX_CONF_DIR is a config error of its own).
 * Not checked: whether the file is included by nginx.conf at all (a template for a site that is not
 * rendered still counts), nor `$gate_app` set through `map`.
 */
export function scanNginxApps(dir: string): NginxAppsScan {
  const refs: AppReference[] = [];
  const errors: string[] = [];
  for (const file of listConfigFiles(dir)) {
    const rel = path.relative(dir, file);
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const hash = lines[i].indexOf('#');
      const code = hash >= 0 ? lines[i].slice(0, hash) : lines[i];
      for (const m of code.matchAll(SET_GATE_APP)) {
        const raw = m[1].trim();
        const unquoted = /^(["'])(.*)\1$/.exec(raw);
        const name = unquoted ? unquoted[2] : raw;
        if (name !== '' && !APP_NAME.test(name)) {
          errors.push(`${rel}:${i + 1}: set $gate_app ${raw}: not an app name (lower-case letters, digits, _ and -, starting with a letter or digit, at most 32; no variables)`);
          continue;
        }
        refs.push({ name, file: rel, line: i + 1 });
      }
    }
  }
  return { refs, errors };
}

/**
 * Checks the scanned names against the compiled policy (null: no policy configured).
 * Errors: a name the policy has no `apps:` section for (with no policy at all, every name), and the
 * scan's own errors. Warnings: a policy app that no config file names (its rules never apply).
 */
export function checkNginxApps(scan: NginxAppsScan, compiled: CompiledPolicy | null, dir: string): { errors: string[]; warnings: string[] } {
  const errors = [...scan.errors.map((e) => `${dir}/${e}`)];
  const warnings: string[] = [];
  const known = compiled?.apps ?? {};
  const names = Object.keys(known).sort();
  const referenced = new Set<string>();
  for (const ref of scan.refs) {
    if (ref.name === '') continue;
    referenced.add(ref.name);
    if (compiled === null) {
      errors.push(
        `${dir}/${ref.file}:${ref.line}: set $gate_app ${ref.name}: no access policy is configured (POLICY_FILE), so the gate refuses every request of app '${ref.name}' (403 app-unknown); add an apps: section for it to a policy`,
      );
    } else if (!Object.prototype.hasOwnProperty.call(known, ref.name)) {
      errors.push(
        `${dir}/${ref.file}:${ref.line}: set $gate_app ${ref.name}: the policy has no app '${ref.name}' (apps: ${names.length === 0 ? 'none' : names.join(', ')}); add it under apps: or fix the name`,
      );
    }
  }
  for (const name of names) {
    if (!referenced.has(name)) warnings.push(`apps.${name}: no 'set $gate_app ${name};' in ${dir}; the rules of this app never apply`);
  }
  return { errors, warnings };
}

/** scanNginxApps + checkNginxApps; an unreadable folder is one error. */
export function lintNginxApps(dir: string, compiled: CompiledPolicy | null): { errors: string[]; warnings: string[]; refs: AppReference[] } {
  let scan: NginxAppsScan;
  try {
    scan = scanNginxApps(dir);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { errors: [`${dir}: cannot read the nginx config folder (${e.code === 'ENOENT' ? 'no such folder' : e.message.split('\n')[0]})`], warnings: [], refs: [] };
  }
  return { ...checkNginxApps(scan, compiled, dir), refs: scan.refs };
}
