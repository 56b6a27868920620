/**
 * Loads and validates the auth service's whole environment once, at start-up. Every problem is
 * collected (not just the first), each naming the variable, the rule and the value received, with
 * secrets masked. Unset and empty mean "use the default"; any other value must be valid: a typo
 * such as `AUTH_COOKIE_SECURE=yes` is an error, never silently read as a default.
 */
import { DEFAULT_ASSERTION_ISSUER, loadAssertionKey, loadPublishedAssertionKey, type AssertionConfig, type AssertionKey, type PublishedAssertionKey } from './services/assertion.js';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { CompiledPolicy } from '../../njs/src/core/policy-contract.js';
import { DEFAULT_SESSION_COOKIE, type IpBinding } from '../../njs/src/core/session-contract.js';
import { compilePolicyFile } from './policy/policy-runtime.js';
import { lintNginxApps } from './policy/nginx-apps.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import { newPasswordRulesFromEnv, passwordPolicyFromEnv, type HashingLimits, type PasswordPolicy } from './passwords/index.js';
import { readSecretSetting } from './security/secret-setting.js';
import { cookieNamePrefix, sessionCookieNamePrefix } from './security/cookies.js';
import { cookieDomainProblem, parseAppOrigins } from './security/sso-settings.js';
import { describeWeakSecret } from './security/secret-strength.js';
import { loadOidcConfig, type LoginMethods, type OidcConfig } from './services/oidc-config.js';
import { loadTableauConnectedAppConfig, type TableauConnectedAppConfig } from './services/tableau-connected-app.js';
import { parsePayloadGroups, type PayloadGroupsRule } from './services/group-selection.js';
import type { PageTheme } from './views/html.js';
import { loadPageTheme } from './views/page-theme.js';
import type { Env } from './env.js';

export type { Env };

/** `points` attempts per `durationSeconds`. */
export interface RateLimitRule {
  points: number;
  durationSeconds: number;
}

/** What Express's `trust proxy` setting receives: false, a hop count, or addresses/ranges/names. */
export type TrustProxySetting = false | number | string[];

export interface AuthConfig {
  host: string;
  port: number;
  /** The internal Prometheus listener (METRICS_HOST:METRICS_PORT), or null when METRICS_PORT is unset. */
  metrics: { host: string; port: number } | null;
  databaseUrl: string;
  jwt: {
    /** Signs new sessions. */
    secret: string;
    /**
     * The secrets of `previousKeys`, in the same order (decoding old cookies at logout and the like).
     * Excludes `secret`, no duplicates.
     */
    previousSecrets: string[];
    /**
     * JWT_PREVIOUS_SECRETS: keys still accepted by the gate (rotation) until `retiredAt` (seconds
     * since the epoch), never used to sign. Some may already be retired; see liveSecrets().
     */
    previousKeys: PreviousKey[];
  };
  session: {
    /**
     * Lifetime of the session token (its `exp`), SESSION_TOKEN_TTL_SECONDS: short, because a token
     * stays valid at the gate until then whatever happens to its session (the revocation bound).
     * nginx renews it through the auth service when it has expired. The cookie itself lives until
     * the session's absolute end (`sessionLifetimes.maxSeconds`), so an expired token can be renewed.
     */
    ttlSeconds: number;
    leewaySeconds: number;
    cookieName: string;
    cookieSecure: boolean;
    /** SESSION_IP_BINDING (or the older PROXY_IP_BINDING: on = exact). */
    ipBinding: IpBinding;
  };
  passwordPolicy: PasswordPolicy;
  rateLimits: { ip: RateLimitRule; user: RateLimitRule; userIp: RateLimitRule };
  /**
   * Password hashes computed at once, and waiting (LOGIN_HASH_CONCURRENCY, LOGIN_HASH_QUEUE), and
   * the CPU priority of the hashing threads (LOGIN_HASH_NICE).
   */
  loginHashing: HashingLimits & { nice: number };
  trustProxy: TrustProxySetting;
  logLevel: LogLevel;
  brandName: string;
  /** BRAND_CSS_FILE and BRAND_LOGO_FILE, read and checked at start-up (views/page-theme.ts). */
  pageTheme: PageTheme;
  /** Where to write the gate's JSON config at start-up, or null to skip. */
  gateConfigFile: string | null;
  /** NGINX_CONF_DIR: the nginx config whose `set $gate_app NAME;` lines were checked; null when unset. */
  nginxConfDir: string | null;
  /** POLICY_FILE, compiled at config load; null when unset (every valid session is allowed). */
  accessPolicy: { file: string; compiled: CompiledPolicy; warnings: string[] } | null;
  /** PAYLOAD_GROUPS: the groups, beyond those the policy names, that sessions carry to the upstream. */
  payloadGroups: PayloadGroupsRule;
  /** Plain-http identity providers allowed (tests only; ALLOW_INSECURE_HTTP_IDP=true). */
  allowInsecureHttpIdp: boolean;
  /** Tableau Server / Tableau Cloud as a second source after local users, or null when off. */
  tableau: TableauConfig | null;
  /** Tableau Connected App (direct trust) for embedded views (TABLEAU_CONNECTED_APP_*), or null when off. */
  tableauConnectedApp: TableauConnectedAppConfig | null;
  /** Absolute path of an operator's authenticator module (AUTH_CUSTOM_MODULE), or null. */
  customModule: string | null;
  /** Password sources in the order they are asked (AUTH_CHAIN); only configured ones. */
  chain: PasswordSource[];
  /** Azure AD / generic OIDC sign-in, or null when off (see services/oidc-config.ts). */
  oidc: OidcConfig | null;
  /** Which sign-in methods the login page offers (LOGIN_METHODS). */
  loginMethods: LoginMethods;
  /** External origin of the gateway (PUBLIC_BASE_URL), or null when unset. */
  publicBaseUrl: string | null;
  /**
   * The signed identity assertion for upstreams (ASSERTION_KEY_FILE, ASSERTION_PREVIOUS_KEY_FILES;
   * services/assertion.ts), or null when ASSERTION_KEY_FILE is unset (off).
   */
  assertion: AssertionConfig | null;
  /** Server-side session limits (ASVS 7.3). */
  sessionLifetimes: {
    /** Absolute lifetime from sign-in (SESSION_MAX_SECONDS, formerly SESSION_TTL_SECONDS). */
    maxSeconds: number;
    /** A session unused this long ends (SESSION_IDLE_SECONDS); never more than maxSeconds. */
    idleSeconds: number;
  };
  /** Audit events (auth_events) older than this many days are deleted (AUDIT_RETENTION_DAYS). */
  auditRetentionDays: number;
  /** Single sign-on across applications (issue 12; docs/operations.md "Single sign-on"). */
  sso: SsoConfig;
  /** Problems that do not stop start-up (a deprecated variable name); main logs each as a warning. */
  warnings: string[];
}

export interface SsoConfig {
  /** SESSION_COOKIE_DOMAIN: the session cookie's Domain on hosts under it, or null (host-only). */
  cookieDomain: string | null;
  /**
   * APP_ORIGINS: the only absolute return URLs accepted (safeReturnTarget), and the hosts a session
   * is handed to with a one-time code. Never includes PUBLIC_BASE_URL's own origin.
   */
  appOrigins: string[];
  /** SSO_HANDOFF_TTL_SECONDS: how long a hand-off code can be redeemed. */
  handoffTtlSeconds: number;
}

export const DEFAULT_SSO_HANDOFF_TTL_SECONDS = 30;

/**
 * LOGIN_HASH_CONCURRENCY's default: half the CPUs (at least 1, at most 4, libuv's default thread
 * pool), so a sign-in storm leaves the other half to nginx and the signed-in traffic.
 */
export const DEFAULT_LOGIN_HASH_CONCURRENCY = Math.min(4, Math.max(1, Math.floor(availableParallelism() / 2)));
export const DEFAULT_LOGIN_HASH_QUEUE = 32;
/** The lowest priority: under contention the signed-in traffic gets the CPU first (hashing-threads.ts; bench/login-storm.ts measured 10 as not enough). */
export const DEFAULT_LOGIN_HASH_NICE = 19;

/** The longest a session may live from sign-in, in seconds (SESSION_MAX_SECONDS). */
export function maxSessionAgeSeconds(config: Pick<AuthConfig, 'sessionLifetimes'>): number {
  return config.sessionLifetimes.maxSeconds;
}

/** A previous signing key and when its grace period ends. */
export interface PreviousKey {
  secret: string;
  /** Seconds since the epoch; from then on the gate refuses its tokens (`token-key-retired`). */
  retiredAt: number;
}

export interface TableauConfig {
  /** Server root without a trailing slash, e.g. https://tableau.example.com. */
  url: string;
  /** Site content URL; '' is the Default site. */
  site: string;
  /** e.g. '3.19'; null means "read it from serverinfo". */
  apiVersion: string | null;
  timeoutMs: number;
  /** TABLEAU_CA_FILE's contents: the only CAs trusted for Tableau's certificate; null: Node's built-in list. */
  caPem: string | null;
}

export type ConfigResult = { ok: true; config: AuthConfig } | { ok: false; errors: string[] };

/** The CSRF cookie's fixed name; the session cookie may not take it. */
export const CSRF_COOKIE_NAME = 'gw_csrf';

/** Variables whose values never appear in messages. */
const SECRET_VARIABLES = new Set(['JWT_SECRET', 'JWT_PREVIOUS_SECRETS']);

/** RFC 6265 cookie-name (an RFC 7230 token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/;

const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function integerInRange(min: number, max: number) {
  return z
    .string()
    .refine((s) => /^[0-9]+$/.test(s) && Number(s) >= min && Number(s) <= max, { error: `must be an integer from ${min} to ${max}` })
    .transform(Number);
}

function oneOf<T extends string>(values: readonly T[]) {
  return z.enum(values as [T, ...T[]], { error: `must be one of ${values.join(', ')}` });
}

function booleanWord(truthy: string, falsy: string) {
  return oneOf([truthy, falsy]).transform((s) => s === truthy);
}

function rateLimit(maxDurationSeconds: number) {
  const rule = `must be "attempts/seconds" with attempts from 1 to 100000 and seconds from 1 to ${maxDurationSeconds}, e.g. "10/300"`;
  return z
    .string()
    .refine(
      (s) => {
        const m = /^([0-9]+)\/([0-9]+)$/.exec(s);
        if (!m) return false;
        const points = Number(m[1]);
        const duration = Number(m[2]);
        return points >= 1 && points <= 100_000 && duration >= 1 && duration <= maxDurationSeconds;
      },
      { error: rule },
    )
    .transform((s): RateLimitRule => {
      const [points, durationSeconds] = s.split('/').map(Number) as [number, number];
      return { points, durationSeconds };
    });
}

function isTrustProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_NAMES.has(entry)) return true;
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = net.isIP(address);
  if (family === 0) return false;
  if (slash < 0) return true;
  const prefix = entry.slice(slash + 1);
  return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const trustProxy = z
  .string()
  .refine(
    (s) => s === 'false' || /^[0-9]{1,2}$/.test(s) || s.split(',').every((e) => isTrustProxyEntry(e.trim())),
    {
      error:
        'must be "false", a hop count (0-99), or a comma-separated list of loopback, linklocal, uniquelocal, IP addresses and CIDR ranges ' +
        '("true" is refused: it would let any client forge X-Forwarded-For and so the ip claim)',
    },
  )
  .transform((s): TrustProxySetting => {
    if (s === 'false') return false;
    if (/^[0-9]{1,2}$/.test(s)) return Number(s);
    return s.split(',').map((e) => e.trim());
  });

const databaseUrl = z.string({ error: 'is required (a postgres:// connection URL)' }).refine(
  (s) => {
    try {
      const url = new URL(s);
      return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '';
    } catch {
      return false;
    }
  },
  { error: 'must be a postgres:// or postgresql:// URL with a host' },
);

/** Oldest REST API with "Get Groups for a User" (Tableau 2020.1). */
const MIN_TABLEAU_API = [3, 7] as const;

const tableauUrl = z.string().refine(
  (s) => {
    try {
      const url = new URL(s);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
    } catch {
      return false;
    }
  },
  { error: 'must be an http(s) URL of the server root, without credentials, query or fragment, e.g. https://tableau.example.com' },
);

export const DEFAULT_SESSION_MAX_SECONDS = 43_200;
export const DEFAULT_SESSION_TOKEN_TTL_SECONDS = 300;

const schema = z.object({
  AUTH_HOST: z
    .string()
    .refine((s) => net.isIP(s) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(s), {
      error: 'must be an IP address or a host name',
    })
    .default('127.0.0.1'),
  AUTH_PORT: integerInRange(0, 65535).default(3001),
  // The metrics listener: off unless METRICS_PORT is set, loopback unless METRICS_HOST says otherwise.
  METRICS_HOST: z
    .string()
    .refine((s) => net.isIP(s) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(s), {
      error: 'must be an IP address or a host name',
    })
    .default('127.0.0.1'),
  METRICS_PORT: integerInRange(0, 65535).optional(),
  DATABASE_URL: databaseUrl,
  SESSION_MAX_SECONDS: integerInRange(60, 604_800).optional(),
  // The old name of SESSION_MAX_SECONDS: still read, with a warning (see loadSessionLifetimes).
  SESSION_TTL_SECONDS: integerInRange(60, 604_800).optional(),
  SESSION_IDLE_SECONDS: integerInRange(60, 604_800).default(3600),
  SESSION_TOKEN_TTL_SECONDS: integerInRange(2, 86_400).default(DEFAULT_SESSION_TOKEN_TTL_SECONDS),
  AUDIT_RETENTION_DAYS: integerInRange(1, 3650).default(90),
  SESSION_LEEWAY_SECONDS: integerInRange(0, 300).default(30),
  SESSION_COOKIE_NAME: z
    .string()
    .refine((s) => COOKIE_NAME.test(s), { error: 'must be 1-64 cookie-name characters (letters, digits and !#$%&\'*+-.^_`|~)' })
    .refine((s) => s !== CSRF_COOKIE_NAME && s !== `__Host-${CSRF_COOKIE_NAME}`, { error: `must not be ${CSRF_COOKIE_NAME} or __Host-${CSRF_COOKIE_NAME}, the CSRF cookie's names` })
    // Unset: DEFAULT_SESSION_COOKIE, `__Host-` prefixed when PUBLIC_BASE_URL is https (loadConfig).
    .optional(),
  AUTH_COOKIE_SECURE: booleanWord('true', 'false').default(true),
  // Checked against PUBLIC_BASE_URL in loadSso (the raw values), like APP_ORIGINS.
  SESSION_COOKIE_DOMAIN: z.string().optional(),
  APP_ORIGINS: z.string().optional(),
  SSO_HANDOFF_TTL_SECONDS: integerInRange(5, 120).default(DEFAULT_SSO_HANDOFF_TTL_SECONDS),
  SESSION_IP_BINDING: oneOf(['exact', 'subnet', 'off'] as const).optional(),
  // The older name (on = exact); read only when SESSION_IP_BINDING is unset.
  PROXY_IP_BINDING: oneOf(['on', 'off'] as const).optional(),
  LOGIN_RATE_LIMIT_IP: rateLimit(86_400).default({ points: 20, durationSeconds: 300 }),
  // Per username: failures from all clients before its backoff starts / how long they are
  // remembered. Only clients that already failed for the username are slowed (login-rate-limiter.ts).
  LOGIN_RATE_LIMIT_USER: rateLimit(3_600).default({ points: 10, durationSeconds: 300 }),
  LOGIN_RATE_LIMIT_USER_IP: rateLimit(3_600).default({ points: 5, durationSeconds: 300 }),
  // Bounds what a sign-in storm can take (passwords/hashing-limiter.ts); beyond the queue: 503.
  LOGIN_HASH_CONCURRENCY: integerInRange(1, 64).default(DEFAULT_LOGIN_HASH_CONCURRENCY),
  LOGIN_HASH_QUEUE: integerInRange(0, 10_000).default(DEFAULT_LOGIN_HASH_QUEUE),
  LOGIN_HASH_NICE: integerInRange(0, 19).default(DEFAULT_LOGIN_HASH_NICE),
  AUTH_TRUST_PROXY: trustProxy.default(['loopback']),
  LOG_LEVEL: oneOf(LOG_LEVELS).default('info'),
  BRAND_NAME: z
    .string()
    .refine((s) => s.length <= 80 && !/[\u0000-\u001f\u007f]/.test(s), { error: 'must be at most 80 characters, without control characters' })
    .default('Identity Gateway'),
  GATE_CONFIG_FILE: z
    .string()
    .refine((s) => !s.includes('\u0000'), { error: 'must be a file path' })
    .optional(),
  POLICY_FILE: z
    .string()
    .refine((s) => !s.includes('\u0000'), { error: 'must be a file path' })
    .optional(),
  NGINX_CONF_DIR: z
    .string()
    .refine((s) => !s.includes('\u0000'), { error: 'must be a folder path' })
    .optional(),
  ALLOW_INSECURE_HTTP_IDP: booleanWord('true', 'false').default(false),
  TABLEAU_URL: tableauUrl.optional(),
  // Content URLs are what Tableau shows in /#/site/<contentUrl>/: letters, digits, - and _.
  TABLEAU_SITE: z
    .string()
    .refine((s) => /^[A-Za-z0-9_-]{1,255}$/.test(s), { error: 'must be a site content URL (letters, digits, - and _), or empty for the Default site' })
    .optional(),
  TABLEAU_API_VERSION: z
    .string()
    .refine(
      (s) => {
        const m = /^([0-9]{1,2})\.([0-9]{1,3})$/.exec(s);
        if (!m) return false;
        const [major, minor] = [Number(m[1]), Number(m[2])];
        return major > MIN_TABLEAU_API[0] || (major === MIN_TABLEAU_API[0] && minor >= MIN_TABLEAU_API[1]);
      },
      { error: `must be a REST API version like 3.19, at least ${MIN_TABLEAU_API.join('.')} (or unset to detect it)` },
    )
    .optional(),
  TABLEAU_TIMEOUT_MS: integerInRange(100, 60_000).default(5000),
  // Read and checked by loadTableauCa (the file's contents, not only its name).
  TABLEAU_CA_FILE: z.string().optional(),
  AUTH_CUSTOM_MODULE: z
    .string()
    .refine((s) => path.isAbsolute(s) && !s.includes('\u0000'), { error: 'must be an absolute file path', abort: true })
    .refine(
      (s) => {
        try {
          return statSync(s).isFile();
        } catch {
          return false;
        }
      },
      { error: 'must name an existing file' },
    )
    .optional(),
  // Validated by parseChain (needs to know which sources are configured).
  AUTH_CHAIN: z.string().optional(),
});

/**
 * The variables the schema above reads. Others are read beside it: JWT_SECRET, JWT_SECRET_FILE,
 * JWT_PREVIOUS_SECRETS (loadSecrets), PAYLOAD_GROUPS, the OIDC and password-policy variables.
 */
export const SCHEMA_VARIABLES: readonly string[] = Object.keys(schema.shape);

/** TABLEAU_* settings that mean nothing without TABLEAU_URL; setting them alone is a mistake. */
const TABLEAU_DEPENDENT = ['TABLEAU_SITE', 'TABLEAU_API_VERSION', 'TABLEAU_TIMEOUT_MS', 'TABLEAU_CA_FILE'] as const;

/**
 * TABLEAU_CA_FILE: the CA certificates (PEM) the auth service trusts for an https TABLEAU_URL, in
 * place of Node's built-in list; nginx's /api/ pass-through trusts the same file. Returns its
 * contents, or null when unset; pushes a problem (same wording as nginx's start-up check, so
 * `make up` lists it once) when the file cannot be read or holds no certificate.
 */
function loadTableauCa(file: string | undefined, tableauUrl: string | undefined, errors: string[]): string | null {
  if (file === undefined || tableauUrl === undefined) return null;
  if (tableauUrl.toLowerCase().startsWith('http:')) {
    errors.push(`TABLEAU_CA_FILE: only applies to an https TABLEAU_URL (received ${JSON.stringify(file)})`);
    return null;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    errors.push(`TABLEAU_CA_FILE: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'}) (received ${JSON.stringify(file)})`);
    return null;
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    errors.push(`TABLEAU_CA_FILE: must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) (received ${JSON.stringify(file)})`);
    return null;
  }
  return text;
}

/** `postgres://user:***@host/db`: the password part of a URL, if any, is replaced. */
export function maskDatabaseUrl(value: string): string {
  return value.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

function describeReceived(variable: string, value: string | undefined): string {
  if (value === undefined) return 'received nothing';
  if (SECRET_VARIABLES.has(variable)) return 'value masked';
  if (variable === 'DATABASE_URL') return `received ${JSON.stringify(maskDatabaseUrl(value))}`;
  return `received ${JSON.stringify(value)}`;
}

/** Unset, empty and all-blank values count as unset; others are trimmed (secrets excepted). */
function readVariable(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return SECRET_VARIABLES.has(name) ? raw : raw.trim();
}

/**
 * `2026-12-31T00:00:00Z` (UTC, whole seconds; `.000Z` also accepted) as seconds since the epoch, or
 * null. Only UTC: a retirement time that shifts with the machine's zone would end a grace period
 * hours early or late.
 */
function parseRetirementTime(text: string): number | null {
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.000)?Z$/.test(text)) return null;
  const ms = Date.parse(text);
  // Date.parse rolls 2026-02-30 over to March; the round trip catches impossible dates.
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== text.slice(0, 19)) return null;
  return ms / 1000;
}

/** IP binding from SESSION_IP_BINDING, else the older PROXY_IP_BINDING (on = exact), else exact. */
function ipBindingOf(modern: IpBinding | undefined, legacy: 'on' | 'off' | undefined): IpBinding {
  if (modern !== undefined) return modern;
  if (legacy !== undefined) return legacy === 'on' ? 'exact' : 'off';
  return 'exact';
}

/**
 * The previous secrets still within their grace period at `nowSeconds` (retiredAt > now), in order.
 * What the gate and the service accept besides the active secret.
 */
export function liveSecrets(previousKeys: readonly PreviousKey[], nowSeconds: number): string[] {
  return previousKeys.filter((k) => nowSeconds < k.retiredAt).map((k) => k.secret);
}

function loadSecrets(env: Env, errors: string[]): { secret: string; previousSecrets: string[]; previousKeys: PreviousKey[] } | null {
  const secret = readSecretSetting('JWT_SECRET', readVariable(env, 'JWT_SECRET'), readVariable(env, 'JWT_SECRET_FILE'), errors);

  const previousKeys: PreviousKey[] = [];
  const previousRaw = readVariable(env, 'JWT_PREVIOUS_SECRETS');
  if (previousRaw !== undefined) {
    const entries = previousRaw.split(',').map((e) => e.trim());
    entries.forEach((entry, i) => {
      const position = `entry ${i + 1} of ${entries.length}`;
      if (entry === '') {
        errors.push(`JWT_PREVIOUS_SECRETS: ${position} is empty; separate secrets with single commas (value masked)`);
        return;
      }
      // The last '@' splits: a secret may contain '@', a time never does.
      const at = entry.lastIndexOf('@');
      const retiredAt = at < 0 ? null : parseRetirementTime(entry.slice(at + 1));
      if (retiredAt === null) {
        errors.push(
          `JWT_PREVIOUS_SECRETS: ${position} ${at < 0 ? 'has no retirement time' : 'has an invalid retirement time'}; ` +
            `write each previous key as <secret>@<UTC time>, e.g. <secret>@2026-12-31T00:00:00Z, the time from which the gate refuses its sessions (value masked)`,
        );
      }
      const previous = at < 0 ? entry : entry.slice(0, at);
      const weak = describeWeakSecret(previous);
      if (weak) errors.push(`JWT_PREVIOUS_SECRETS: ${position} ${weak}`);
      else if (retiredAt !== null && previous !== secret && !previousKeys.some((k) => k.secret === previous)) previousKeys.push({ secret: previous, retiredAt });
    });
  }
  return secret === undefined ? null : { secret, previousSecrets: previousKeys.map((k) => k.secret), previousKeys };
}

/**
 * Validates `env` (normally `process.env`) and returns the typed config or every problem found.
 *
 * Guaranteed: no secret or database password appears in an error; JWT_SECRET_FILE is read once,
 * here, with trailing CR/LF removed; previous secrets never include the active one.
 * Not checked: that DATABASE_URL is reachable, that GATE_CONFIG_FILE's directory exists or is
 * writable, that AUTH_HOST resolves (all fail later, at start-up, with their own message).
 */
export type PasswordSource = 'local' | 'tableau' | 'custom';
const PASSWORD_SOURCES: readonly PasswordSource[] = ['local', 'tableau', 'custom'];

/**
 * AUTH_CHAIN: the order in which password sources are asked ("local,tableau,custom" by default,
 * keeping only the configured ones). Every named source must be configured, none may repeat, and a
 * configured Tableau or custom module must appear (configured but never asked is a mistake).
 */
function parseChain(raw: string | undefined, configured: Record<PasswordSource, boolean>, errors: string[]): PasswordSource[] {
  if (raw === undefined || raw.trim() === '') return PASSWORD_SOURCES.filter((src) => configured[src]);
  const received = `received ${JSON.stringify(raw)}`;
  const chain: PasswordSource[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim().toLowerCase();
    if (!(PASSWORD_SOURCES as readonly string[]).includes(name)) {
      errors.push(`AUTH_CHAIN: "${part.trim()}" is not a source; use local, tableau, custom, comma-separated (${received})`);
      continue;
    }
    const src = name as PasswordSource;
    if (chain.includes(src)) errors.push(`AUTH_CHAIN: "${src}" is listed twice (${received})`);
    else if (!configured[src]) errors.push(`AUTH_CHAIN: "${src}" is not configured (${src === 'tableau' ? 'set TABLEAU_URL' : 'set AUTH_CUSTOM_MODULE'}) (${received})`);
    else chain.push(src);
  }
  for (const src of PASSWORD_SOURCES) {
    if (src !== 'local' && configured[src] && !raw.toLowerCase().split(',').map((p) => p.trim()).includes(src)) {
      errors.push(`AUTH_CHAIN: ${src === 'tableau' ? 'TABLEAU_URL' : 'AUTH_CUSTOM_MODULE'} is set but "${src}" is not in the chain (${received})`);
    }
  }
  return chain;
}


/**
 * SESSION_MAX_SECONDS, or its old name SESSION_TTL_SECONDS (a warning), and SESSION_IDLE_SECONDS,
 * which may not exceed it; SESSION_TOKEN_TTL_SECONDS may not exceed SESSION_IDLE_SECONDS. Both names with different values is an error: which one was meant?
 * Reads the raw input, so these checks run even when another variable is invalid.
 */
function loadSessionLifetimes(input: Record<string, string | undefined>, errors: string[], warnings: string[]): void {
  const max = input.SESSION_MAX_SECONDS;
  const old = input.SESSION_TTL_SECONDS;
  if (max !== undefined && old !== undefined && max !== old) {
    errors.push(
      `SESSION_TTL_SECONDS: is the old name of SESSION_MAX_SECONDS, and the two are set to different values; remove SESSION_TTL_SECONDS (received ${JSON.stringify(old)}, SESSION_MAX_SECONDS ${JSON.stringify(max)})`,
    );
  } else if (old !== undefined) {
    warnings.push(`SESSION_TTL_SECONDS is deprecated: rename it to SESSION_MAX_SECONDS (same meaning, the absolute session lifetime)`);
  }
  const effective = max ?? old;
  const idle = input.SESSION_IDLE_SECONDS;
  const isInt = (s: string | undefined): s is string => s !== undefined && /^[0-9]+$/.test(s);
  const maxValue = isInt(effective) ? Number(effective) : effective === undefined ? DEFAULT_SESSION_MAX_SECONDS : null;
  if (isInt(idle) && maxValue !== null && Number(idle) > maxValue) {
    errors.push(`SESSION_IDLE_SECONDS: must not exceed SESSION_MAX_SECONDS (${maxValue}) (received ${JSON.stringify(idle)})`);
  }
  // Idle expiry is checked when a token is renewed: a token outliving the idle window would let an
  // idle session run past it.
  const tokenTtl = input.SESSION_TOKEN_TTL_SECONDS;
  const idleValue = isInt(idle) ? Number(idle) : idle === undefined ? 3600 : null;
  if (isInt(tokenTtl) && idleValue !== null && Number(tokenTtl) > idleValue) {
    errors.push(`SESSION_TOKEN_TTL_SECONDS: must not exceed SESSION_IDLE_SECONDS (${idleValue}) (received ${JSON.stringify(tokenTtl)})`);
  }
}

/**
 * SESSION_COOKIE_DOMAIN and APP_ORIGINS, checked against PUBLIC_BASE_URL (security/sso-settings.ts);
 * a `__Host-` SESSION_COOKIE_NAME cannot carry a Domain. PUBLIC_BASE_URL's own origin in APP_ORIGINS
 * is dropped (it is the sign-in host, never a hand-off target).
 */
function loadSso(input: Record<string, string | undefined>, publicBaseUrl: string | null, errors: string[]): Omit<SsoConfig, 'handoffTtlSeconds'> {
  let cookieDomain: string | null = null;
  const domain = input.SESSION_COOKIE_DOMAIN;
  if (domain !== undefined) {
    const problem = cookieDomainProblem(domain, publicBaseUrl);
    if (problem !== null) errors.push(`SESSION_COOKIE_DOMAIN: ${problem} (received ${JSON.stringify(domain)})`);
    else cookieDomain = domain;
    if (input.SESSION_COOKIE_NAME !== undefined && input.SESSION_COOKIE_NAME.startsWith('__Host-')) {
      errors.push(`SESSION_COOKIE_NAME: must not start with __Host- when SESSION_COOKIE_DOMAIN is set (browsers refuse a __Host- cookie with a Domain) (received ${JSON.stringify(input.SESSION_COOKIE_NAME)})`);
    }
  }
  let appOrigins: string[] = [];
  const originsValue = input.APP_ORIGINS;
  if (originsValue !== undefined) {
    const parsed = parseAppOrigins(originsValue, publicBaseUrl);
    if (!parsed.ok) for (const p of parsed.problems) errors.push(`APP_ORIGINS: ${p} (received ${JSON.stringify(originsValue)})`);
    else appOrigins = parsed.origins.filter((o) => o !== publicBaseUrl);
  }
  return { cookieDomain, appOrigins };
}

/**
 * ASSERTION_KEY_FILE (a PEM P-256 or Ed25519 private key; unset: assertions off) and
 * ASSERTION_PREVIOUS_KEY_FILES (comma-separated PEM files, private or public: published in the JWKS
 * during a rotation, never used to sign). Problems go to `errors`, naming the variable, never a key.
 */
function loadAssertionKeys(env: Env, errors: string[]): Pick<AssertionConfig, 'key' | 'previousKeys'> | null {
  const file = readVariable(env, 'ASSERTION_KEY_FILE');
  const previousValue = readVariable(env, 'ASSERTION_PREVIOUS_KEY_FILES');
  if (file === undefined) {
    if (previousValue !== undefined) errors.push(`ASSERTION_PREVIOUS_KEY_FILES: only applies with ASSERTION_KEY_FILE, which is not set (received ${JSON.stringify(previousValue)})`);
    return null;
  }
  let key: AssertionKey | null = null;
  try {
    key = loadAssertionKey(file);
  } catch (err) {
    errors.push(`ASSERTION_KEY_FILE: ${(err as Error).message}`);
  }
  const previousKeys: PublishedAssertionKey[] = [];
  if (previousValue !== undefined) {
    previousValue.split(',').forEach((part, i) => {
      const previous = part.trim();
      if (previous === '') {
        errors.push(`ASSERTION_PREVIOUS_KEY_FILES: entry ${i + 1} is empty; separate files with single commas (received ${JSON.stringify(previousValue)})`);
        return;
      }
      try {
        const published = loadPublishedAssertionKey(previous);
        if (key !== null && published.kid === key.kid) errors.push(`ASSERTION_PREVIOUS_KEY_FILES: entry ${i + 1} is the ASSERTION_KEY_FILE key itself (received ${JSON.stringify(previous)})`);
        else previousKeys.push(published);
      } catch (err) {
        errors.push(`ASSERTION_PREVIOUS_KEY_FILES: entry ${i + 1} ${(err as Error).message}`);
      }
    });
  }
  return key === null ? null : { key, previousKeys };
}

export function loadConfig(env: Env): ConfigResult {
  const errors: string[] = [];

  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) input[key] = readVariable(env, key);
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0] ?? '');
      errors.push(`${variable}: ${issue.message} (${describeReceived(variable, input[variable])})`);
    }
  }

  // Read directly, not from `parsed`: an unrelated invalid variable must not hide the checks below.
  const allowInsecureHttpIdp = input.ALLOW_INSECURE_HTTP_IDP === 'true';
  const tableauUrlValue = input.TABLEAU_URL;
  if (tableauUrlValue === undefined) {
    for (const name of TABLEAU_DEPENDENT) {
      if (input[name] !== undefined) errors.push(`${name}: only applies with TABLEAU_URL, which is not set (received ${JSON.stringify(input[name])})`);
    }
  } else if (tableauUrlValue.toLowerCase().startsWith('http:') && !allowInsecureHttpIdp) {
    errors.push(
      `TABLEAU_URL: must use https (users' passwords are sent to it); plain http needs ALLOW_INSECURE_HTTP_IDP=true, for tests only (received ${JSON.stringify(tableauUrlValue)})`,
    );
  }

  const tableauCa = loadTableauCa(input.TABLEAU_CA_FILE, tableauUrlValue, errors);

  const warnings: string[] = [];
  loadSessionLifetimes(input, errors, warnings);

  const chain = parseChain(input.AUTH_CHAIN, { local: true, tableau: input.TABLEAU_URL !== undefined, custom: input.AUTH_CUSTOM_MODULE !== undefined }, errors);

  const secrets = loadSecrets(env, errors);
  const oidcSettings = loadOidcConfig(env, errors, allowInsecureHttpIdp);
  const tableauConnectedApp = loadTableauConnectedAppConfig(env, errors);

  const policy = passwordPolicyFromEnv(env);
  // Used by the users CLI and the demo seeding, not by sign-in; checked here so a typo shows at start-up.
  const newPasswordRules = newPasswordRulesFromEnv(env);
  for (const issue of [...(policy.ok ? [] : policy.issues), ...(newPasswordRules.ok ? [] : newPasswordRules.issues)]) {
    errors.push(`${issue.variable}: ${issue.rule} (received ${JSON.stringify(issue.received)})`);
  }

  // The access policy is compiled here so that its problems are reported with all the others.
  let accessPolicy: { file: string; compiled: CompiledPolicy; warnings: string[] } | null = null;
  const policyFileValue = input.POLICY_FILE;
  if (policyFileValue !== undefined && input.GATE_CONFIG_FILE === undefined) {
    errors.push(`POLICY_FILE: only applies with GATE_CONFIG_FILE (the compiled policy is written next to it) (received ${JSON.stringify(policyFileValue)})`);
  } else if (policyFileValue !== undefined && !policyFileValue.includes('\u0000')) {
    const compiled = compilePolicyFile(policyFileValue, Math.floor(Date.now() / 1000));
    if (compiled.ok) accessPolicy = { file: policyFileValue, compiled: compiled.compiled, warnings: compiled.warnings };
    else for (const e of compiled.errors) errors.push(`POLICY_FILE: ${e}`);
  }
  // The apps the nginx config names (`set $gate_app NAME;`) must all have a policy section: a name
  // the policy lacks would be refused on every request (403 app-unknown). Skipped when POLICY_FILE
  // itself failed (its errors are already listed).
  const nginxConfDir = input.NGINX_CONF_DIR;
  if (nginxConfDir !== undefined && nginxConfDir !== '' && !nginxConfDir.includes('\u0000') && (accessPolicy !== null || policyFileValue === undefined)) {
    const apps = lintNginxApps(nginxConfDir, accessPolicy === null ? null : accessPolicy.compiled);
    for (const e of apps.errors) errors.push(`NGINX_CONF_DIR: ${e}`);
    if (accessPolicy !== null) accessPolicy.warnings.push(...apps.warnings);
  }

  const pageTheme = loadPageTheme(readVariable(env, 'BRAND_CSS_FILE'), readVariable(env, 'BRAND_LOGO_FILE'));
  if (!pageTheme.ok) errors.push(...pageTheme.errors);

  const payloadGroupsValue = readVariable(env, 'PAYLOAD_GROUPS');
  const payloadGroups = parsePayloadGroups(payloadGroupsValue);
  if (!payloadGroups.ok) for (const e of payloadGroups.errors) errors.push(`PAYLOAD_GROUPS: ${e} (received ${JSON.stringify(payloadGroupsValue)})`);

  // Served over https (PUBLIC_BASE_URL): cookies are Secure and their default names `__Host-` ones
  // (the session cookie's `__Secure-` with SESSION_COOKIE_DOMAIN).
  const cookiePrefix = cookieNamePrefix(oidcSettings.publicBaseUrl);
  const sso = loadSso(input, oidcSettings.publicBaseUrl, errors);
  if (cookiePrefix !== '' && input.AUTH_COOKIE_SECURE === 'false') {
    errors.push(`AUTH_COOKIE_SECURE: must not be false when PUBLIC_BASE_URL is https (the cookies are then Secure and named __Host-...) (received "false")`);
  }

  if (input.METRICS_PORT !== undefined && input.METRICS_PORT !== '0' && input.METRICS_PORT === (input.AUTH_PORT ?? '3001')) {
    errors.push(`METRICS_PORT: must differ from AUTH_PORT (metrics never go on the port nginx proxies) (received ${JSON.stringify(input.METRICS_PORT)})`);
  }

  if (input.SESSION_IP_BINDING !== undefined && input.PROXY_IP_BINDING !== undefined) {
    errors.push(`PROXY_IP_BINDING: set SESSION_IP_BINDING or the older PROXY_IP_BINDING, not both (received ${JSON.stringify(input.PROXY_IP_BINDING)})`);
  }

  const assertionKeys = loadAssertionKeys(env, errors);

  if (errors.length > 0 || !parsed.success || secrets === null || !policy.ok || !payloadGroups.ok || !pageTheme.ok) {
    return { ok: false, errors };
  }
  const v = parsed.data;
  const sessionCookieName = v.SESSION_COOKIE_NAME ?? sessionCookieNamePrefix(oidcSettings.publicBaseUrl, sso.cookieDomain) + DEFAULT_SESSION_COOKIE;
  return {
    ok: true,
    config: {
      host: v.AUTH_HOST,
      port: v.AUTH_PORT,
      metrics: v.METRICS_PORT === undefined ? null : { host: v.METRICS_HOST, port: v.METRICS_PORT },
      databaseUrl: v.DATABASE_URL,
      jwt: secrets,
      session: {
        ttlSeconds: v.SESSION_TOKEN_TTL_SECONDS,
        leewaySeconds: v.SESSION_LEEWAY_SECONDS,
        cookieName: sessionCookieName,
        cookieSecure: v.AUTH_COOKIE_SECURE || cookiePrefix !== '',
        ipBinding: ipBindingOf(v.SESSION_IP_BINDING, v.PROXY_IP_BINDING),
      },
      passwordPolicy: policy.policy,
      rateLimits: { ip: v.LOGIN_RATE_LIMIT_IP, user: v.LOGIN_RATE_LIMIT_USER, userIp: v.LOGIN_RATE_LIMIT_USER_IP },
      loginHashing: { concurrency: v.LOGIN_HASH_CONCURRENCY, queue: v.LOGIN_HASH_QUEUE, nice: v.LOGIN_HASH_NICE },
      trustProxy: v.AUTH_TRUST_PROXY,
      logLevel: v.LOG_LEVEL,
      brandName: v.BRAND_NAME,
      pageTheme: pageTheme.theme,
      gateConfigFile: v.GATE_CONFIG_FILE ?? null,
      nginxConfDir: v.NGINX_CONF_DIR || null,
      accessPolicy,
      payloadGroups: payloadGroups.rule,
      allowInsecureHttpIdp: v.ALLOW_INSECURE_HTTP_IDP,
      tableau:
        v.TABLEAU_URL === undefined
          ? null
          : { url: v.TABLEAU_URL.replace(/\/+$/, ''), site: v.TABLEAU_SITE ?? '', apiVersion: v.TABLEAU_API_VERSION ?? null, timeoutMs: v.TABLEAU_TIMEOUT_MS, caPem: tableauCa },
      tableauConnectedApp,
      customModule: v.AUTH_CUSTOM_MODULE ?? null,
      chain,
      ...oidcSettings,
      assertion:
        assertionKeys === null
          ? null
          : {
              ...assertionKeys,
              issuer: oidcSettings.publicBaseUrl === null ? DEFAULT_ASSERTION_ISSUER : new URL(oidcSettings.publicBaseUrl).origin,
              cookieName: `${sessionCookieName}_asr`,
            },
      sessionLifetimes: {
        maxSeconds: v.SESSION_MAX_SECONDS ?? v.SESSION_TTL_SECONDS ?? DEFAULT_SESSION_MAX_SECONDS,
        idleSeconds: v.SESSION_IDLE_SECONDS,
      },
      auditRetentionDays: v.AUDIT_RETENTION_DAYS,
      sso: { ...sso, handoffTtlSeconds: v.SSO_HANDOFF_TTL_SECONDS },
      warnings,
    },
  };
}
