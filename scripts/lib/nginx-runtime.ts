/**
 * Runs the repo's own nginx config from a private prefix: used by `make up`, the integration and
 * browser tests, and the benchmark, so all of them exercise exactly the files operators mount.
 *
 * Prefix layout:
 *   PREFIX/conf/                 rendered copy of nginx/ (*.template files substituted)
 *   PREFIX/conf/njs/gate.js      the njs bundle (njs/dist/gate.js), and tableau.js and renew.js beside it
 *   PREFIX/conf/runtime/gate-config.json   written by the auth service (GATE_CONFIG_FILE)
 *   PREFIX/conf/runtime/pages/             nginx's own branded pages, written by the auth service beside it
 *   PREFIX/logs/, PREFIX/temp/
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
/** In a `make up` runtime dir: the pid of the launcher that runs it. */
export const LAUNCHER_PID_FILE = 'launcher.pid';
/** The njs modules built beside gate.js (scripts/build-njs.mjs), each imported in its own location only. */
export const NJS_SIDE_MODULES = ['tableau.js', 'renew.js', 'revocations.js'];

/** The only placeholders substituted in nginx/**\/*.template (nginx's own $variables are untouched). */
export interface NginxTemplateVars {
  PROXY_LISTEN: string;
  /**
   * The protected app: `host:port` (plain http, as before), `http://host[:port]` or
   * `https://host[:port]` (see parseUpstream). Rendered as the upstream's `server` (host:port) and
   * APP_UPSTREAM_SCHEME; https also renders nginx/upstream-tls/.
   */
  APP_UPSTREAM: string;
  /** Trust store for an https APP_UPSTREAM (PEM file); default SYSTEM_CA_FILE. */
  UPSTREAM_CA_FILE?: string;
  /** Trust store for an https TABLEAU_URL on the /api/ pass-through (PEM file); default SYSTEM_CA_FILE. */
  TABLEAU_CA_FILE?: string;
  AUTH_UPSTREAM: string;
  /** Tableau /api/ pass-through: proxy read/send timeout, whole seconds (default in NGINX_SETTING_DEFAULTS). */
  TABLEAU_API_TIMEOUT_SECONDS?: string;
  /** Tableau /api/ pass-through: request body limit, whole MiB. */
  TABLEAU_API_MAX_BODY_MB?: string;
  /** Tableau REST API pass-through's path prefix on the gateway (default `/api/`), or `off` (no such location). */
  TABLEAU_API_PATH?: string;
  /** HTTPS (both set, or neither: plain http only): certificate chain and key files as nginx reads them. */
  TLS_CERT_FILE?: string;
  TLS_KEY_FILE?: string;
  /** The HTTPS port, on PROXY_LISTEN's address (default in HTTPS_SETTING_DEFAULTS). */
  HTTPS_PORT?: string;
  /** Strict-Transport-Security max-age in seconds on https responses; 0: no header. */
  HSTS_MAX_AGE?: string;
  /** on: HSTS covers subdomains too (includeSubDomains). */
  HSTS_INCLUDE_SUBDOMAINS?: string;
  /** Comma-separated balancer addresses/ranges whose X-Forwarded-For and X-Forwarded-Proto are believed. */
  TRUSTED_PROXIES?: string;
  /** The internal stub_status listener's port on 127.0.0.1 (nginx/status/); unset: no such listener. */
  NGINX_STATUS_PORT?: string;
  /** The WAF (ModSecurity + OWASP CRS, nginx/waf/): On, DetectionOnly or Off (unset: Off, nothing loaded). */
  WAF_MODE?: WafMode;
  /** CRS paranoia level, 1-4 (default in WAF_SETTING_DEFAULTS). */
  WAF_PARANOIA_LEVEL?: string;
  /** The session cookie's name when SESSION_COOKIE_NAME sets one (the WAF leaves that cookie to the gate). */
  WAF_SESSION_COOKIE?: string;
}

const TEMPLATE_VARS: ReadonlyArray<keyof NginxTemplateVars> = [
  'PROXY_LISTEN',
  'APP_UPSTREAM',
  'AUTH_UPSTREAM',
  'TABLEAU_API_TIMEOUT_SECONDS',
  'TABLEAU_API_MAX_BODY_MB',
  'TABLEAU_API_PATH',
];

/** TABLEAU_API_PATH's default: Tableau's own prefix, so a front end calls the same paths as on Tableau. */
export const DEFAULT_TABLEAU_API_PATH = '/api/';

/**
 * A location prefix nginx takes literally and that cannot shadow the gateway's own paths: `/`, then
 * path segments of unreserved characters, ending in `/`.
 */
const TABLEAU_API_PATH = /^\/(?:[A-Za-z0-9._~-]+\/)+$/;
const RESERVED_PREFIXES = ['/_gate/', '/login/', '/logout/', '/auth/', '/.well-known/'];

/**
 * TABLEAU_API_PATH from `env`: unset or empty → `/api/`; `off` → no pass-through location (an app's
 * own /api/ stays the app's even with TABLEAU_URL set); else a prefix such as `/tableau-api/`.
 * Returns the problem (variable, rule, value received) or null. Not checked: that the prefix does not
 * overlap a location of the operator's own site (nginx then takes the longer prefix).
 */
export function tableauApiPathFromEnv(env: NodeJS.ProcessEnv): { path: string; problem: string | null } {
  const raw = env.TABLEAU_API_PATH;
  const value = raw === undefined || raw.trim() === '' ? DEFAULT_TABLEAU_API_PATH : raw.trim();
  if (value === 'off') return { path: value, problem: null };
  const reserved = RESERVED_PREFIXES.find((p) => value.startsWith(p));
  if (!TABLEAU_API_PATH.test(value) || value.includes('/./') || value.includes('/../') || reserved !== undefined) {
    return {
      path: DEFAULT_TABLEAU_API_PATH,
      problem:
        `TABLEAU_API_PATH: must be off, or a path prefix that starts and ends with / and holds only letters, digits and . _ ~ -, ` +
        `e.g. /tableau-api/, and not under ${RESERVED_PREFIXES.join(', ')} (received ${JSON.stringify(raw)})`,
    };
  }
  return { path: value, problem: null };
}

/**
 * nginx settings that come from the environment, with their defaults and bounds. 300 s: a publish
 * or a large query takes longer than the sign-in calls TABLEAU_TIMEOUT_MS bounds. 64 MiB: the
 * largest file Tableau accepts in one publish request (bigger ones go in 64 MiB upload-session parts).
 * docker/nginx-entrypoint.sh applies the same defaults and bounds.
 */
export const NGINX_SETTINGS = {
  TABLEAU_API_TIMEOUT_SECONDS: { default: '300', min: 1, max: 3600 },
  TABLEAU_API_MAX_BODY_MB: { default: '64', min: 1, max: 4096 },
} as const;

type NginxSettingName = keyof typeof NGINX_SETTINGS;

/**
 * Reads the NGINX_SETTINGS variables from `env` (unset or empty: the default). Returns every problem
 * at once (variable, rule, value received); the values are whole numbers, so nothing in them can
 * end an nginx directive.
 */
export function nginxSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: Record<NginxSettingName | 'TABLEAU_API_PATH', string>; problems: string[] } {
  const settings = {} as Record<NginxSettingName | 'TABLEAU_API_PATH', string>;
  const problems: string[] = [];
  for (const name of Object.keys(NGINX_SETTINGS) as NginxSettingName[]) {
    const rule = NGINX_SETTINGS[name];
    const raw = env[name];
    const value = raw === undefined || raw === '' ? rule.default : raw;
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) < rule.min || Number(value) > rule.max) {
      problems.push(`${name}: must be a whole number from ${rule.min} to ${rule.max} (received ${JSON.stringify(raw)})`);
    }
    settings[name] = value;
  }
  const apiPath = tableauApiPathFromEnv(env);
  settings.TABLEAU_API_PATH = apiPath.path;
  if (apiPath.problem !== null) problems.push(apiPath.problem);
  return { settings, problems };
}

/**
 * Substitutes the TEMPLATE_VARS placeholders (an unset setting gets its NGINX_SETTINGS default), the
 * APP_UPSTREAM parts (APP_UPSTREAM becomes the upstream's host:port, APP_UPSTREAM_SCHEME http or
 * https) and TABLEAU_CA_FILE (default SYSTEM_CA_FILE); leaves every other `$` alone.
 */
export function renderTemplate(text: string, vars: NginxTemplateVars): string {
  let out = text;
  const app = appUpstreamOf(vars);
  const derived: Record<string, string> = { APP_UPSTREAM_SCHEME: app.scheme, TABLEAU_CA_FILE: vars.TABLEAU_CA_FILE ?? SYSTEM_CA_FILE };
  for (const name of TEMPLATE_VARS) {
    const value = name === 'APP_UPSTREAM' ? app.server : (vars[name] ?? (name === 'TABLEAU_API_PATH' ? DEFAULT_TABLEAU_API_PATH : name in NGINX_SETTINGS ? NGINX_SETTINGS[name as NginxSettingName].default : undefined));
    if (value === undefined) throw new Error(`nginx template value ${name} missing`);
    out = out.split('${' + name + '}').join(value);
  }
  for (const [name, value] of Object.entries(derived)) out = out.split('${' + name + '}').join(value);
  return out;
}

/** Debian's system trust store (package ca-certificates): the default of UPSTREAM_CA_FILE and TABLEAU_CA_FILE. */
export const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

/** An upstream address as nginx needs it: the `server` value, the scheme, and the name TLS checks. */
export interface UpstreamAddress {
  scheme: 'http' | 'https';
  /** `host:port`, `[v6]:port` or `unix:/path`: the value of `server` in the upstream block. */
  server: string;
  /** The host without brackets or port (SNI, and the name the certificate must carry); '' for unix:. */
  host: string;
}

const UPSTREAM_URL = /^(?:(https?):\/\/)?(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::([0-9]{1,5}))?\/?$/;

/**
 * Parses APP_UPSTREAM: `host:port` (plain http, the form before https upstreams), `http://host[:port]`
 * (default port 80) or `https://host[:port]` (default 443), host a DNS name, an IPv4 address or a
 * bracketed IPv6 address; or `unix:/path` (plain http). Returns null for anything else: a path, a
 * query, credentials, another scheme, characters that could end an nginx directive. Not checked:
 * that the host resolves (nginx does, at start and reload).
 */
export function parseUpstream(value: string): UpstreamAddress | null {
  const v = value.trim();
  if (/^unix:\/[^\s;{}$"'\\#]+$/.test(v)) return { scheme: 'http', server: v, host: '' };
  const m = UPSTREAM_URL.exec(v.replace(/^https?:\/\//i, (p) => p.toLowerCase()));
  if (m === null) return null;
  const scheme = m[1] === 'https' ? 'https' : 'http';
  const port = m[3] ?? (scheme === 'https' ? '443' : '80');
  if (Number(port) < 1 || Number(port) > 65535) return null;
  if (m[2]!.startsWith('[') && isIP(m[2]!.slice(1, -1)) !== 6) return null;
  return { scheme, server: `${m[2]}:${port}`, host: m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]! };
}

/** APP_UPSTREAM of `vars`, parsed; throws (naming the variable) when it cannot be. */
function appUpstreamOf(vars: NginxTemplateVars): UpstreamAddress {
  const parsed = parseUpstream(vars.APP_UPSTREAM);
  if (parsed === null) throw new Error(`APP_UPSTREAM: ${UPSTREAM_RULE} (received ${JSON.stringify(vars.APP_UPSTREAM)})`);
  return parsed;
}

const UPSTREAM_RULE = 'must be host:port, http://host[:port] or https://host[:port] (no path), e.g. https://app.internal:8443';

/**
 * The problem with a CA file setting, or null: it must be a path nginx can take as one directive
 * value, name a readable file, and hold at least one PEM certificate. Checked at start-up (make up,
 * the container entrypoint, the auth service for TABLEAU_CA_FILE), so a missing or wrong file is
 * reported with every other problem instead of as nginx's "SSL_CTX_load_verify_locations" failure.
 */
export function caFileProblem(name: string, path: string): string | null {
  if (!DIRECTIVE_PATH.test(path)) return `${name}: must be a file path without spaces, quotes or ; { } $ # \\ (received ${JSON.stringify(path)})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `${name}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'}) (received ${JSON.stringify(path)})`;
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) return `${name}: must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) (received ${JSON.stringify(path)})`;
  return null;
}

/**
 * Reads APP_UPSTREAM (optional here: `make up` falls back to its demo app), UPSTREAM_CA_FILE and
 * TABLEAU_CA_FILE from `env`, with every problem at once. UPSTREAM_CA_FILE applies only to an
 * https APP_UPSTREAM (set with a plain http one, it is a mistake and reported); with an https one
 * and none set, the system store must be there. Relative paths are made absolute.
 */
export function upstreamSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: Partial<Pick<NginxTemplateVars, 'APP_UPSTREAM' | 'UPSTREAM_CA_FILE' | 'TABLEAU_CA_FILE'>>; problems: string[] } {
  const settings: Partial<Pick<NginxTemplateVars, 'APP_UPSTREAM' | 'UPSTREAM_CA_FILE' | 'TABLEAU_CA_FILE'>> = {};
  const problems: string[] = [];
  const read = (name: string) => (env[name] === undefined || env[name]!.trim() === '' ? undefined : env[name]!.trim());
  const upstream = read('APP_UPSTREAM');
  const parsed = upstream === undefined ? null : parseUpstream(upstream);
  if (upstream !== undefined && parsed === null) problems.push(`APP_UPSTREAM: ${UPSTREAM_RULE} (received ${JSON.stringify(upstream)})`);
  else if (upstream !== undefined) settings.APP_UPSTREAM = upstream;
  const upstreamCa = read('UPSTREAM_CA_FILE');
  if (upstreamCa !== undefined && parsed !== null && parsed.scheme !== 'https') {
    problems.push(`UPSTREAM_CA_FILE: only applies with an https:// APP_UPSTREAM (received ${JSON.stringify(upstreamCa)})`);
  } else if (parsed?.scheme === 'https' || upstreamCa !== undefined) {
    const path = upstreamCa === undefined ? SYSTEM_CA_FILE : resolve(upstreamCa);
    const problem = caFileProblem('UPSTREAM_CA_FILE', upstreamCa === undefined ? path : upstreamCa);
    if (problem !== null) problems.push(upstreamCa === undefined ? `${problem.replace(/ \(received .*\)$/, '')} (unset: the system store ${SYSTEM_CA_FILE}; install ca-certificates or set UPSTREAM_CA_FILE)` : problem);
    else if (upstreamCa !== undefined) settings.UPSTREAM_CA_FILE = path;
  }
  const tableauCa = read('TABLEAU_CA_FILE');
  if (tableauCa !== undefined) {
    const problem = caFileProblem('TABLEAU_CA_FILE', tableauCa);
    if (problem !== null) problems.push(problem);
    else settings.TABLEAU_CA_FILE = resolve(tableauCa);
  }
  return { settings, problems };
}

/** Where nginx/upstream-tls/ goes in the rendered conf/ (the site's app locations include what is there). */
export const UPSTREAM_TLS_SNIPPETS_DIR = join('snippets', 'upstream-tls.d');

/** Renders nginx/upstream-tls/ of a staged conf into snippets/upstream-tls.d/ for an https APP_UPSTREAM, else drops it. */
function stageUpstreamTlsSnippets(next: string, vars: NginxTemplateVars): void {
  const dir = join(next, 'upstream-tls');
  if (!existsSync(dir)) return;
  const app = appUpstreamOf(vars);
  if (app.scheme !== 'https') {
    rmSync(dir, { recursive: true });
    return;
  }
  const values = { APP_UPSTREAM_TLS_NAME: app.host, UPSTREAM_CA_FILE: vars.UPSTREAM_CA_FILE ?? SYSTEM_CA_FILE };
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.template')) renderTemplateFile(join(dir, name), values);
  }
  renameSync(dir, join(next, UPSTREAM_TLS_SNIPPETS_DIR));
}

/** HTTPS settings' defaults (README "HTTPS"); docker/nginx-entrypoint.sh applies the same. */
export const HTTPS_SETTING_DEFAULTS = { HTTPS_PORT: '8443', HSTS_MAX_AGE: '31536000', HSTS_INCLUDE_SUBDOMAINS: 'off' } as const;

/** A file path nginx can take as one directive value: nothing that ends it, quotes, or substitutes. */
const DIRECTIVE_PATH = /^[^\s;{}$"'\\#]+$/;

/**
 * Reads TLS_CERT_FILE, TLS_KEY_FILE, HTTPS_PORT, HSTS_MAX_AGE, HSTS_INCLUDE_SUBDOMAINS and
 * TRUSTED_PROXIES from `env` (unset or empty: off, or the default), with every problem at once.
 * Relative certificate paths are made absolute (from the current directory), as nginx would read
 * them from its prefix otherwise. Not checked: that the files exist and match (nginx -t says so).
 */
export function httpsSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: Partial<NginxTemplateVars>; problems: string[] } {
  const settings: Partial<NginxTemplateVars> = {};
  const problems: string[] = [];
  const read = (name: string) => (env[name] === undefined || env[name]!.trim() === '' ? undefined : env[name]!.trim());
  const cert = read('TLS_CERT_FILE');
  const key = read('TLS_KEY_FILE');
  if ((cert === undefined) !== (key === undefined)) {
    const missing = cert === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE';
    problems.push(`${missing}: set TLS_CERT_FILE and TLS_KEY_FILE together (received nothing for ${missing})`);
  }
  for (const [name, value] of [['TLS_CERT_FILE', cert], ['TLS_KEY_FILE', key]] as const) {
    if (value === undefined) continue;
    if (!DIRECTIVE_PATH.test(value)) problems.push(`${name}: must be a file path without spaces, quotes or ; { } $ # \\ (received ${JSON.stringify(value)})`);
    else settings[name] = resolve(value);
  }
  const whole = (name: 'HTTPS_PORT' | 'HSTS_MAX_AGE', min: number, max: number) => {
    const value = read(name) ?? HTTPS_SETTING_DEFAULTS[name];
    if (!/^[0-9]{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
      problems.push(`${name}: must be a whole number from ${min} to ${max} (received ${JSON.stringify(env[name])})`);
    }
    settings[name] = value;
  };
  whole('HTTPS_PORT', 1, 65535);
  whole('HSTS_MAX_AGE', 0, 63_072_000);
  const subdomains = read('HSTS_INCLUDE_SUBDOMAINS') ?? HTTPS_SETTING_DEFAULTS.HSTS_INCLUDE_SUBDOMAINS;
  if (subdomains !== 'on' && subdomains !== 'off') problems.push(`HSTS_INCLUDE_SUBDOMAINS: must be on or off (received ${JSON.stringify(env.HSTS_INCLUDE_SUBDOMAINS)})`);
  settings.HSTS_INCLUDE_SUBDOMAINS = subdomains;
  const proxies = read('TRUSTED_PROXIES');
  if (proxies !== undefined) {
    const bad = proxies.split(',').map((e) => e.trim()).filter((e) => !isAddressOrRange(e));
    if (bad.length > 0) problems.push(`TRUSTED_PROXIES: must be comma-separated IP addresses or CIDR ranges, e.g. 10.0.0.0/8,192.0.2.7 (received ${JSON.stringify(proxies)})`);
    else settings.TRUSTED_PROXIES = proxies.split(',').map((e) => e.trim()).join(',');
  }
  return { settings, problems };
}

function isAddressOrRange(entry: string): boolean {
  const slash = entry.indexOf('/');
  const family = isIP(slash < 0 ? entry : entry.slice(0, slash));
  if (family === 0) return false;
  if (slash < 0) return true;
  const bits = entry.slice(slash + 1);
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * The placeholders of nginx/https/ derived from the settings, and which of its files apply:
 * tls-* and hsts-* with TLS_CERT_FILE (hsts-* only with HSTS_MAX_AGE > 0), balancer-* with
 * TRUSTED_PROXIES. HTTPS listens on PROXY_LISTEN's address (none: all) at HTTPS_PORT.
 */
export function httpsTemplateValues(vars: NginxTemplateVars): { files: { tls: boolean; hsts: boolean; balancer: boolean }; values: Record<string, string> } {
  const port = vars.HTTPS_PORT ?? HTTPS_SETTING_DEFAULTS.HTTPS_PORT;
  const maxAge = vars.HSTS_MAX_AGE ?? HTTPS_SETTING_DEFAULTS.HSTS_MAX_AGE;
  const colon = vars.PROXY_LISTEN.lastIndexOf(':');
  const proxies = (vars.TRUSTED_PROXIES ?? '').split(',').filter((e) => e !== '');
  const tls = vars.TLS_CERT_FILE !== undefined && vars.TLS_KEY_FILE !== undefined;
  return {
    files: { tls, hsts: tls && maxAge !== '0', balancer: proxies.length > 0 },
    values: {
      TLS_CERT_FILE: vars.TLS_CERT_FILE ?? '',
      TLS_KEY_FILE: vars.TLS_KEY_FILE ?? '',
      HTTPS_LISTEN: colon < 0 ? port : `${vars.PROXY_LISTEN.slice(0, colon)}:${port}`,
      HTTPS_REDIRECT_PORT: port === '443' ? '' : `:${port}`,
      HSTS_HEADER: `max-age=${maxAge}${vars.HSTS_INCLUDE_SUBDOMAINS === 'on' ? '; includeSubDomains' : ''}`,
      TRUSTED_PROXIES_REAL_IP: proxies.map((p) => `set_real_ip_from ${p};`).join('\n'),
      TRUSTED_PROXIES_GEO: proxies.map((p) => `    ${p} 1;`).join('\n'),
    },
  };
}

/**
 * NGINX_STATUS_PORT from `env`: unset or empty turns the internal stub_status listener off; anything
 * else must be a TCP port. docker/nginx-entrypoint.sh applies the same rule.
 */
export function statusSettingsFromEnv(env: NodeJS.ProcessEnv): { settings: Pick<NginxTemplateVars, 'NGINX_STATUS_PORT'>; problems: string[] } {
  const raw = env.NGINX_STATUS_PORT?.trim();
  if (raw === undefined || raw === '') return { settings: {}, problems: [] };
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    return { settings: {}, problems: [`NGINX_STATUS_PORT: must be a TCP port 1-65535, or unset for no status listener (received ${JSON.stringify(env.NGINX_STATUS_PORT)})`] };
  }
  return { settings: { NGINX_STATUS_PORT: raw }, problems: [] };
}

/** Where nginx/status/ goes in the rendered conf/ when NGINX_STATUS_PORT is set (nginx.conf includes it). */
export const STATUS_SNIPPETS_DIR = join('snippets', 'status.d');

/** Renders nginx/status/ of a staged conf into snippets/status.d/ with NGINX_STATUS_PORT set, else drops it. */
function stageStatusSnippets(next: string, vars: NginxTemplateVars): void {
  const dir = join(next, 'status');
  if (!existsSync(dir)) return;
  if (vars.NGINX_STATUS_PORT === undefined) {
    rmSync(dir, { recursive: true });
    return;
  }
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.template')) continue;
    const path = join(dir, name);
    writeFileSync(path.slice(0, -'.template'.length), readFileSync(path, 'utf8').split('${NGINX_STATUS_PORT}').join(vars.NGINX_STATUS_PORT));
    rmSync(path);
  }
  renameSync(dir, join(next, STATUS_SNIPPETS_DIR));
}

export type WafMode = 'On' | 'DetectionOnly' | 'Off';
const WAF_MODES: readonly WafMode[] = ['On', 'DetectionOnly', 'Off'];
/** WAF_PARANOIA_LEVEL's default; docker/nginx-entrypoint.sh applies the same. */
export const WAF_SETTING_DEFAULTS = { WAF_PARANOIA_LEVEL: '1' } as const;
/** Where nginx/waf/ goes in the rendered conf/ (nginx.conf, protect.conf and gate-server.conf include what is there). */
export const WAF_SNIPPETS_DIR = join('snippets', 'waf.d');
/** The WAF's log (every rule a request matched, with the request id), in the prefix's logs/. */
export const WAF_LOG = join('logs', 'waf.log');

/**
 * Reads WAF_MODE (On, DetectionOnly or Off; unset or empty: `defaultMode`, which differs by launcher:
 * DetectionOnly for `make up`, On in the container) and WAF_PARANOIA_LEVEL (1-4) from `env`, with
 * every problem at once. Not checked: that the Debian packages are installed (nginx -t says so).
 */
export function wafSettingsFromEnv(env: NodeJS.ProcessEnv, defaultMode: WafMode): { settings: Pick<NginxTemplateVars, 'WAF_MODE' | 'WAF_PARANOIA_LEVEL' | 'WAF_SESSION_COOKIE'>; problems: string[] } {
  const problems: string[] = [];
  const rawMode = env.WAF_MODE === undefined || env.WAF_MODE.trim() === '' ? defaultMode : env.WAF_MODE.trim();
  const mode = WAF_MODES.find((m) => m === rawMode);
  if (mode === undefined) problems.push(`WAF_MODE: must be On, DetectionOnly or Off (received ${JSON.stringify(env.WAF_MODE)})`);
  const level = env.WAF_PARANOIA_LEVEL === undefined || env.WAF_PARANOIA_LEVEL.trim() === '' ? WAF_SETTING_DEFAULTS.WAF_PARANOIA_LEVEL : env.WAF_PARANOIA_LEVEL.trim();
  if (!/^[1-4]$/.test(level)) problems.push(`WAF_PARANOIA_LEVEL: must be 1, 2, 3 or 4 (received ${JSON.stringify(env.WAF_PARANOIA_LEVEL)})`);
  const cookie = env.SESSION_COOKIE_NAME?.trim();
  const settings: Pick<NginxTemplateVars, 'WAF_MODE' | 'WAF_PARANOIA_LEVEL' | 'WAF_SESSION_COOKIE'> = { WAF_MODE: mode ?? 'Off', WAF_PARANOIA_LEVEL: level };
  if (cookie) settings.WAF_SESSION_COOKIE = cookie;
  return { settings, problems };
}

/**
 * The session cookie's name as a regular expression for the WAF's exclusion: the gate verifies that
 * cookie's signature before the CRS judges the request, and the CRS rules cost about 1.5 ms per
 * request on a session token. The default name, with its __Host- form (PUBLIC_BASE_URL on https) and its __Secure- form (with SESSION_COOKIE_DOMAIN),
 * or SESSION_COOKIE_NAME when it has only letters, digits and _ . - (any other name keeps the
 * default, so that cookie is inspected: slower, never less safe). Docker's entrypoint does the same.
 */
export function wafSessionCookiePattern(name: string | undefined): string {
  if (name !== undefined && /^[A-Za-z0-9_.-]{1,64}$/.test(name)) return `^${name.replace(/[.]/g, '[.]')}$`;
  return '^(?:__Host-)?(?:__Secure-)?gw_session$';
}

/**
 * Renders nginx/waf/ of a staged conf into snippets/waf.d/ when WAF_MODE is On or DetectionOnly;
 * removes it otherwise, so WAF_MODE=Off loads no module and costs nothing.
 */
function stageWafSnippets(next: string, vars: NginxTemplateVars): void {
  const dir = join(next, 'waf');
  if (!existsSync(dir)) return;
  const mode = vars.WAF_MODE ?? 'Off';
  if (mode === 'Off') {
    rmSync(dir, { recursive: true });
    return;
  }
  const values: Record<string, string> = {
    WAF_MODE: mode,
    WAF_PARANOIA_LEVEL: vars.WAF_PARANOIA_LEVEL ?? WAF_SETTING_DEFAULTS.WAF_PARANOIA_LEVEL,
    WAF_SESSION_COOKIE_PATTERN: wafSessionCookiePattern(vars.WAF_SESSION_COOKIE),
  };
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.template')) renderTemplateFile(join(dir, name), values);
  }
  renameSync(dir, join(next, WAF_SNIPPETS_DIR));
}

/** Where nginx/tableau-api/ goes in the rendered conf/ (snippets/tableau-api.conf includes what is there). */
export const TABLEAU_API_SNIPPETS_DIR = join('snippets', 'tableau-api.d');

/**
 * nginx/tableau-api/ (the pass-through's public location) of a staged conf moved to
 * snippets/tableau-api.d/, rendered there with the other templates; removed with TABLEAU_API_PATH=off.
 */
function stageTableauApiSnippets(next: string, vars: NginxTemplateVars): void {
  const dir = join(next, 'tableau-api');
  if (!existsSync(dir)) return;
  if (vars.TABLEAU_API_PATH === 'off') rmSync(dir, { recursive: true });
  else renameSync(dir, join(next, TABLEAU_API_SNIPPETS_DIR));
}

/** Where nginx/https/ goes in the rendered conf/ (gate.conf and the site include what is there). */
export const HTTPS_SNIPPETS_DIR = join('snippets', 'https.d');

/** Renders nginx/https/ of a staged conf into snippets/https.d/, keeping only the files that apply. */
function stageHttpsSnippets(next: string, vars: NginxTemplateVars): void {
  const dir = join(next, 'https');
  if (!existsSync(dir)) return;
  const { files, values } = httpsTemplateValues(vars);
  for (const name of readdirSync(dir)) {
    const kind = name.split('-')[0] as keyof typeof files;
    const path = join(dir, name);
    if (!files[kind]) {
      rmSync(path);
    } else if (name.endsWith('.template')) {
      renderTemplateFile(path, values);
    }
  }
  renameSync(dir, join(next, HTTPS_SNIPPETS_DIR));
}

/** Writes `path` without its .template suffix, each `${NAME}` of `values` filled in, and removes the template. */
function renderTemplateFile(path: string, values: Record<string, string>): void {
  let text = readFileSync(path, 'utf8');
  for (const [placeholder, value] of Object.entries(values)) text = text.split('${' + placeholder + '}').join(value);
  writeFileSync(path.slice(0, -'.template'.length), text);
  rmSync(path);
}

export interface PrepareOptions {
  prefix: string;
  vars: NginxTemplateVars;
  /** Source config folder; defaults to the repo's nginx/. */
  sourceDir?: string;
  /** The njs bundle; defaults to njs/dist/gate.js (run `npm run build` first). Its folder also holds NJS_SIDE_MODULES. */
  njsBundle?: string;
  /** Extra files to drop into conf/ (relative path → content), e.g. benchmark sites. */
  extraFiles?: Record<string, string>;
  /**
   * Render nginx/njs08/ into conf/snippets/njs08.d/ (NJS_REVOCATIONS=on): the revoked-sessions dict
   * and its poller, which only njs >= 0.8 accepts (njs 0.7.9 fails `nginx -t` on them), and install
   * gate-njs08.js (the gate that reads that dict) as njs/gate.js. Omitted: as the prefix was last
   * rendered (so `make reload` keeps it), else off.
   */
  revocations?: boolean;
}

/** The gate bundle for njs >= 0.8 with revocations, built beside gate.js; installed as njs/gate.js. */
export const NJS08_GATE_BUNDLE = 'gate-njs08.js';
/** Where the njs >= 0.8 snippets go; gate.conf and snippets/gate-server.conf include what is there. */
export const NJS08_SNIPPETS_DIR = join('snippets', 'njs08.d');
/** In a prefix: "on" or "off", how it was last rendered (see PrepareOptions.revocations). */
const REVOCATIONS_STATE_FILE = 'revocations';

/**
 * NJS_REVOCATIONS from `env`: 'on' → true, 'off' or unset/empty → false, anything else a problem.
 * Explicit rather than detected: the njs module's version is not visible before nginx loads it,
 * and a config that silently differs by host would be tested on one and run on another.
 */
export function revocationsFromEnv(env: NodeJS.ProcessEnv): { revocations: boolean; problems: string[] } {
  const raw = env.NJS_REVOCATIONS;
  if (raw === undefined || raw === '' || raw === 'off') return { revocations: false, problems: [] };
  if (raw === 'on') return { revocations: true, problems: [] };
  return { revocations: false, problems: [`NJS_REVOCATIONS: must be on (njs >= 0.8 only) or off (received ${JSON.stringify(raw)})`] };
}

function recordedRevocations(prefix: string): boolean {
  const at = join(prefix, REVOCATIONS_STATE_FILE);
  return existsSync(at) && readFileSync(at, 'utf8').trim() === 'on';
}

/**
 * Renders nginx/ into PREFIX/conf.next: templates substituted, the njs bundle copied in, and the
 * current conf/runtime/ (the gate config the auth service wrote) carried over. Nothing live changes.
 */
export function stageNginxConf(opts: PrepareOptions): string {
  const prefix = resolve(opts.prefix);
  const conf = join(prefix, 'conf');
  const next = join(prefix, 'conf.next');
  const sourceDir = opts.sourceDir ?? join(REPO_ROOT, 'nginx');
  const bundle = opts.njsBundle ?? join(REPO_ROOT, 'njs', 'dist', 'gate.js');
  if (!existsSync(bundle)) {
    throw new Error(`njs bundle not found at ${bundle}: run \`npm run build\` first`);
  }
  rmSync(next, { recursive: true, force: true });
  for (const dir of [prefix, join(prefix, 'logs'), join(prefix, 'temp')]) mkdirSync(dir, { recursive: true });
  cpSync(sourceDir, next, { recursive: true });
  mkdirSync(join(next, 'njs'), { recursive: true });
  mkdirSync(join(next, 'runtime'), { recursive: true });
  stageHttpsSnippets(next, opts.vars);
  stageUpstreamTlsSnippets(next, opts.vars);
  stageStatusSnippets(next, opts.vars);
  stageWafSnippets(next, opts.vars);
  stageTableauApiSnippets(next, opts.vars);
  renderTemplatesIn(next, opts.vars);
  const revocations = opts.revocations ?? recordedRevocations(prefix);
  if (revocations) renameSync(join(next, 'njs08'), join(next, NJS08_SNIPPETS_DIR));
  else rmSync(join(next, 'njs08'), { recursive: true, force: true });
  writeFileSync(join(prefix, REVOCATIONS_STATE_FILE), revocations ? 'on\n' : 'off\n');
  // With revocations the gate is the revocation-aware build of the same sources (index-njs08.ts).
  cpSync(revocations ? join(dirname(bundle), NJS08_GATE_BUNDLE) : bundle, join(next, 'njs', 'gate.js'));
  // The Tableau /api/ and renewal modules are built next to the gate (scripts/build-njs.mjs).
  for (const module of NJS_SIDE_MODULES) cpSync(join(dirname(bundle), module), join(next, 'njs', module));
  if (existsSync(join(conf, 'runtime'))) cpSync(join(conf, 'runtime'), join(next, 'runtime'), { recursive: true });
  for (const [rel, content] of Object.entries(opts.extraFiles ?? {})) {
    writeFileSync(join(next, rel), content);
  }
  writeFileSync(join(prefix, 'template-vars.json'), JSON.stringify(opts.vars, null, 2) + '\n');
  // Read by toOperatorPaths: nginx's messages then name the file the operator edits.
  writeFileSync(join(prefix, 'source-dir'), resolve(sourceDir) + '\n');
  // Workers run as an unprivileged user when the master is root: they must traverse the prefix to
  // serve the pages in runtime/pages/. Secrets (runtime/gate-config.json) stay 0600 and are read by the master.
  for (const dir of [prefix, next, join(next, 'runtime')]) chmodSync(dir, 0o755);
  ensureWorkersCanTraverse(prefix);
  return next;
}

/**
 * As root, nginx's workers (user nobody) must be able to walk down to PREFIX/conf/runtime/pages, or the
 * branded error pages turn into nginx's bare ones. The prefix's own parent (DATA_DIR, a temp dir) gets
 * search permission for others (no listing, no reading: 0711 at most); a directory further up that is
 * closed is reported on stderr, not changed.
 */
function ensureWorkersCanTraverse(prefix: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const parent = dirname(prefix);
  const mode = statSync(parent).mode & 0o777;
  if ((mode & 0o001) === 0) chmodSync(parent, mode | 0o011);
  for (let dir = dirname(parent); dir !== dirname(dir); dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      console.error(`warning: ${dir} is not searchable by others: nginx's workers cannot read ${join(prefix, 'conf', 'runtime', 'pages')}, so error pages fall back to nginx's own. Move DATA_DIR elsewhere or \`chmod o+x ${dir}\`.`);
      return;
    }
  }
}

/** Problems with the runtime JSON files nginx preloads (see testNginxConfig). */
function runtimeJsonProblems(confDir: string): string[] {
  const dir = join(confDir, 'runtime');
  if (!existsSync(dir)) return [];
  const problems: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (err) {
      problems.push(`runtime/${name} is not valid JSON (${(err as Error).message})`);
    }
  }
  return problems;
}

/** Makes PREFIX/conf.next the live conf/; the old one is removed, or kept as conf.prev for restorePreviousConf. */
export function activateStagedConf(prefix: string, opts: { keepPrevious?: boolean } = {}): void {
  const conf = join(prefix, 'conf');
  const prev = join(prefix, 'conf.prev');
  rmSync(prev, { recursive: true, force: true });
  if (existsSync(conf)) renameSync(conf, prev);
  renameSync(join(prefix, 'conf.next'), conf);
  if (!opts.keepPrevious) rmSync(prev, { recursive: true, force: true });
}

/** Puts conf.prev back as conf/ (after nginx refused to apply a reload, conf/ shows what runs). */
function restorePreviousConf(prefix: string): void {
  if (!existsSync(join(prefix, 'conf.prev'))) return;
  rmSync(join(prefix, 'conf'), { recursive: true, force: true });
  renameSync(join(prefix, 'conf.prev'), join(prefix, 'conf'));
}

/** Renders nginx/ into PREFIX/conf and returns the path the auth service must write the gate config to. */
export function prepareNginxPrefix(opts: PrepareOptions): { prefix: string; gateConfigFile: string } {
  const prefix = resolve(opts.prefix);
  stageNginxConf(opts);
  activateStagedConf(prefix);
  return { prefix, gateConfigFile: join(prefix, 'conf', 'runtime', 'gate-config.json') };
}

/**
 * Records which policy file `make up` compiled (null: none), so that `make reload` recompiles the
 * same one unless POLICY_FILE says otherwise.
 */
export function writePolicySource(prefix: string, file: string | null): void {
  writeFileSync(join(prefix, 'policy-source.json'), JSON.stringify({ file }) + '\n');
}

/** The policy file recorded by writePolicySource, or null (none, or never recorded). */
export function readPolicySource(prefix: string): string | null {
  const at = join(prefix, 'policy-source.json');
  if (!existsSync(at)) return null;
  const parsed = JSON.parse(readFileSync(at, 'utf8')) as { file?: unknown };
  return typeof parsed.file === 'string' ? parsed.file : null;
}

/** The template values the prefix was last rendered with (for `make reload`). */
export function readTemplateVars(prefix: string): NginxTemplateVars {
  return JSON.parse(readFileSync(join(prefix, 'template-vars.json'), 'utf8')) as NginxTemplateVars;
}

function renderTemplatesIn(dir: string, vars: NginxTemplateVars): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      renderTemplatesIn(path, vars);
    } else if (name.endsWith('.template')) {
      writeFileSync(path.slice(0, -'.template'.length), renderTemplate(readFileSync(path, 'utf8'), vars));
      rmSync(path);
    }
  }
}

/**
 * nginx's arguments for a prefix. With `chroot` (a root the prefix lies inside, e.g. the Debian 13
 * test root of scripts/trixie-root.sh), nginx runs as `chroot ROOT nginx`, so the paths it is given
 * are the prefix's paths inside that root.
 */
function nginxArgs(prefix: string, confDir = 'conf', chroot?: string): string[] {
  const inner = chroot === undefined ? prefix : pathInside(chroot, prefix);
  return ['-p', inner + '/', '-c', `${confDir}/nginx.conf`, '-e', join(inner, 'logs', 'error.log')];
}

/** `path` as seen from inside the root `chroot` (which must contain it). */
export function pathInside(chroot: string, path: string): string {
  const root = resolve(chroot);
  const full = resolve(path);
  if (!full.startsWith(root + '/')) throw new Error(`${full} is not inside the root ${root}`);
  return full.slice(root.length);
}

/** The command that runs nginx: NGINX_BIN, or the root's own /usr/sbin/nginx through chroot(8). */
function nginxCommand(chroot?: string): string[] {
  return chroot === undefined ? [NGINX_BIN] : ['/usr/sbin/chroot', chroot, '/usr/sbin/nginx'];
}

/**
 * `nginx -t` on the prefix (or on its staged conf.next); returns nginx's own message. The runtime JSON
 * files are parsed first, because njs 0.7.9 fails `nginx -t` on bad JSON without naming the file.
 */
export function testNginxConfig(prefix: string, confDir: 'conf' | 'conf.next' = 'conf', chroot?: string): { ok: boolean; output: string } {
  const jsonProblems = runtimeJsonProblems(join(prefix, confDir));
  if (jsonProblems.length > 0) return { ok: false, output: jsonProblems.join('\n') };
  const command = nginxCommand(chroot);
  const res = spawnSync(command[0]!, [...command.slice(1), ...nginxArgs(prefix, confDir, chroot), '-t', '-q'], { encoding: 'utf8' });
  return { ok: res.status === 0, output: `${res.stdout}${res.stderr}`.trim() };
}

export interface RunningNginx {
  prefix: string;
  process: ChildProcess;
  /** Re-render nginx/ and reload gracefully; an invalid config is refused and the old one keeps serving. */
  reload(opts?: Partial<PrepareOptions>): { ok: boolean; output: string };
  stop(): Promise<void>;
  errorLog(): string;
  accessLog(): string;
}

const SETPRIV_BIN = '/usr/bin/setpriv';

/**
 * Spawns nginx (master in the foreground) so that:
 * - it dies with the process that started it, even on `kill -9` of that process: util-linux's
 *   setpriv sets PR_SET_PDEATHSIG (SIGTERM) and then execs nginx, so the master itself, not a wrapper,
 *   receives the signal; nginx's master then stops its workers. The leftover check at the next start
 *   (stopLeftoverNginx) covers a machine without setpriv;
 * - the logs it creates are 0640, not 0644 (umask 027): access logs hold user names and addresses.
 */
function spawnNginx(args: string[], env: NodeJS.ProcessEnv, chroot?: string): ChildProcess {
  // chroot(8) execs nginx too, so the master is still the process setpriv started.
  const nginx = [...nginxCommand(chroot), ...args];
  const command = existsSync(SETPRIV_BIN) ? [SETPRIV_BIN, '--pdeathsig', 'SIGTERM', '--', ...nginx] : nginx;
  return spawn('/bin/sh', ['-c', 'umask 027 && exec "$@"', 'nginx', ...command], { stdio: ['ignore', 'inherit', 'inherit'], env });
}

/** Log files an older run left world-readable become 0640 (nginx appends to existing files as they are). */
function restrictLogModes(prefix: string): void {
  const logs = join(prefix, 'logs');
  if (!existsSync(logs)) return;
  for (const name of readdirSync(logs)) {
    if (name.endsWith('.log') && statSync(join(logs, name)).isFile()) chmodSync(join(logs, name), 0o640);
  }
}

function readPidFile(prefix: string): number | null {
  try {
    const pid = Number(readFileSync(join(prefix, 'logs', 'nginx.pid'), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** True if a process `pid` exists (EPERM: it does, but belongs to another account). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True if `pid` is an nginx master started with `-p PREFIX/` (so never somebody else's process). */
function isNginxMasterOf(pid: number, prefix: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return argv.startsWith('nginx: master process') && argv.includes(` -p ${prefix}/ `);
  } catch {
    return false;
  }
}

/**
 * Stops an nginx master still running from PREFIX whose launcher is gone (for example after a
 * `kill -9` on a machine without setpriv), so that it neither holds the port nor serves a stale
 * config. Returns its pid, or null if there was none.
 */
export async function stopLeftoverNginx(prefix: string): Promise<number | null> {
  const pid = readPidFile(resolve(prefix));
  if (pid === null || !isNginxMasterOf(pid, resolve(prefix))) return null;
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; isAlive(pid) && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  return pid;
}

/** The error.log lines written since `offset` (a byte length read earlier). */
function errorLogSince(prefix: string, offset: number): string {
  const p = join(prefix, 'logs', 'error.log');
  if (!existsSync(p)) return '';
  return readFileSync(p).subarray(offset).toString('utf8').trim();
}

function errorLogSize(prefix: string): number {
  const p = join(prefix, 'logs', 'error.log');
  return existsSync(p) ? statSync(p).size : 0;
}

/** nginx's "bind() to 127.0.0.1:8080 failed (98: Address already in use)" in plain words, or null. */
export function describeBindFailure(log: string): string | null {
  const m = /bind\(\) to (\S+) failed \((\d+): ([^)]*)\)/.exec(log);
  if (!m) return null;
  const port = m[1]!.slice(m[1]!.lastIndexOf(':') + 1);
  if (m[2] === '98') return `port ${port} is in use (nginx could not listen on ${m[1]}: another program, or another \`make up\`, holds it)`;
  if (m[2] === '13') return `nginx may not listen on ${m[1]} (permission denied: ports below 1024 need root)`;
  return `nginx could not listen on ${m[1]} (${m[3]})`;
}

/**
 * Starts nginx (master in the foreground, see spawnNginx) and waits until it really serves: its pid
 * file names the process we started (nginx writes it only after binding every listen address) and
 * `port` accepts connections. If nginx exits first, the error names the cause from error.log, e.g.
 * "port 8080 is in use". Something else answering on `port` is never taken for nginx.
 * With `chroot`, it runs that root's nginx (`chroot ROOT nginx`; the prefix must lie inside ROOT),
 * e.g. nginx 1.26 + njs 0.8 from scripts/trixie-root.sh; reload() then tests and runs that one too.
 */
export async function startNginx(prefix: string, port: number, timeoutMs = 10_000, env?: NodeJS.ProcessEnv, chroot?: string): Promise<RunningNginx> {
  const check = testNginxConfig(prefix, 'conf', chroot);
  if (!check.ok) throw new Error(`nginx config test failed:\n${check.output}`);
  restrictLogModes(prefix);
  rmSync(join(prefix, 'logs', 'nginx.pid'), { force: true });
  const logOffset = errorLogSize(prefix);
  // `env` (tests only) replaces nginx's environment, e.g. to run it under libfaketime.
  const child = spawnNginx([...nginxArgs(prefix, 'conf', chroot), '-g', 'daemon off;'], env ?? process.env, chroot);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const readLog = (name: string) => {
    const p = join(prefix, 'logs', name);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  };
  const deadline = Date.now() + timeoutMs;
  while (readPidFile(prefix) !== child.pid) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      const log = errorLogSince(prefix, logOffset);
      child.kill('SIGKILL');
      const cause = describeBindFailure(log) ?? (child.exitCode !== null ? `nginx exited with status ${child.exitCode}` : 'nginx did not start in time');
      throw new Error(`${cause}\n${log}`.trim());
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  await waitForPort(port, Math.max(deadline - Date.now(), 1000), () => child.exitCode !== null, () => errorLogSince(prefix, logOffset));
  return {
    prefix,
    process: child,
    reload: (opts = {}) => reloadNginx({ prefix, vars: readTemplateVars(prefix), chroot, ...opts }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
    errorLog: () => readLog('error.log'),
    accessLog: () => readLog('access.log'),
  };
}

export async function waitForPort(
  port: number,
  timeoutMs: number,
  hasDied: () => boolean = () => false,
  diagnostics: () => string = () => '',
): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port });
      // Nothing listens yet, but the kernel gave this socket `port` as its own source port (the port
      // is from the ephemeral range): TCP's simultaneous open connects the socket to itself. That
      // is not the server; without this check the caller's first request then gets ECONNREFUSED.
      s.once('connect', () => { const self = s.localPort === port; s.destroy(); res(!self); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (hasDied() || Date.now() > deadline) {
      throw new Error(`nothing listening on 127.0.0.1:${port}${hasDied() ? ' (process exited)' : ''}\n${diagnostics()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** Blocks for `ms` (the reload check is synchronous, like `nginx -s reload` itself). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The processes whose parent is `pid`, with their titles ("nginx: worker process", …). */
function childrenOf(pid: number): Array<{ pid: number; title: string }> {
  const found: Array<{ pid: number; title: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const title = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
      found.push({ pid: Number(name), title });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Workers that accept connections (old ones retitle themselves "… is shutting down" as they close their listeners). */
function servingWorkers(master: number): number[] {
  return childrenOf(master)
    .filter((c) => c.title === 'nginx: worker process')
    .map((c) => c.pid);
}

/**
 * Rewrites paths into the prefix's conf/ or conf.next/ (what nginx reads) to the file the operator
 * edits: the source folder's file, or its `.template`. Template substitution keeps line numbers.
 * Generated files (runtime/, njs/gate.js) keep their prefix path.
 */
export function toOperatorPaths(text: string, prefix: string): string {
  const at = join(prefix, 'source-dir');
  const sourceDir = existsSync(at) ? readFileSync(at, 'utf8').trim() : join(REPO_ROOT, 'nginx');
  const escaped = resolve(prefix).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`${escaped}/conf(?:\\.next)?/([^\\s:"]+)`, 'g'), (whole, rel: string) => {
    if (existsSync(join(sourceDir, rel))) return join(sourceDir, rel);
    if (existsSync(join(sourceDir, rel + '.template'))) return join(sourceDir, rel + '.template');
    return join(prefix, 'conf', rel);
  });
}

/**
 * Waits until the master has answered SIGHUP: success once new workers run and no old worker
 * still accepts connections (so the next request meets the new config); failure as soon as
 * error.log gets an [emerg]/[alert]/[crit] line after `logOffset` (for example a listen address
 * already in use: nginx then keeps its old config and workers, and `nginx -s reload` still exits 0).
 */
function awaitReload(prefix: string, master: number, oldWorkers: Set<number>, logOffset: number, timeoutMs: number): { ok: boolean; log: string } {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = errorLogSince(prefix, logOffset);
    const fatal = log.split('\n').filter((l) => /\[(emerg|alert|crit)\]/.test(l));
    if (fatal.length > 0) return { ok: false, log: fatal.join('\n') };
    if (!isAlive(master)) return { ok: false, log: `the nginx master (pid ${master}) exited\n${log}`.trim() };
    const serving = servingWorkers(master);
    if (serving.length > 0 && serving.every((pid) => !oldWorkers.has(pid))) return { ok: true, log };
    if (Date.now() > deadline) return { ok: false, log: `nginx did not start new workers within ${timeoutMs} ms\n${log}`.trim() };
    sleepSync(25);
  }
}

/**
 * Re-renders the config, tests it, and only then swaps it in and signals a graceful reload (SIGHUP,
 * as `nginx -s reload`: old workers finish their connections). Returns only once new workers serve
 * the new config. A config that fails `nginx -t` (a broken gate config or njs bundle), or that the
 * running master then fails to apply (a listen address in use), is refused with nginx's message, the
 * paths in it naming the operator's files; the running config keeps serving and stays in conf/.
 */
export function reloadNginx(opts: PrepareOptions & { timeoutMs?: number; chroot?: string }): { ok: boolean; output: string } {
  const prefix = resolve(opts.prefix);
  stageNginxConf(opts);
  const staged = testNginxConfig(prefix, 'conf.next', opts.chroot);
  if (!staged.ok) {
    rmSync(join(prefix, 'conf.next'), { recursive: true, force: true });
    return { ok: false, output: `new config refused, the running one keeps serving:\n${toOperatorPaths(staged.output, prefix)}` };
  }
  const master = readPidFile(prefix);
  if (master === null || !isAlive(master)) {
    rmSync(join(prefix, 'conf.next'), { recursive: true, force: true });
    return { ok: false, output: `no nginx is running from ${prefix} (no live pid in ${join(prefix, 'logs', 'nginx.pid')})` };
  }
  const oldWorkers = new Set(servingWorkers(master));
  const logOffset = errorLogSize(prefix);
  activateStagedConf(prefix, { keepPrevious: true });
  process.kill(master, 'SIGHUP');
  const outcome = awaitReload(prefix, master, oldWorkers, logOffset, opts.timeoutMs ?? 10_000);
  if (!outcome.ok) {
    restorePreviousConf(prefix);
    const cause = describeBindFailure(outcome.log);
    return {
      ok: false,
      output: `nginx could not apply the new config${cause ? `: ${cause}` : ''}; the running one keeps serving:\n${toOperatorPaths(outcome.log, prefix)}`,
    };
  }
  rmSync(join(prefix, 'conf.prev'), { recursive: true, force: true });
  return { ok: true, output: `reloaded: new workers (pid ${servingWorkers(master).join(', ')}) serve the new config` };
}
