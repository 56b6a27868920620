import { isIP } from 'node:net';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { appSection, decideAccess } from '../../../njs/src/core/policy.js';
import { MAX_POLICY_PATH_LENGTH, policyPath } from '../../../njs/src/core/request-path.js';
import { writeGateConfig } from '../services/gate-config.js';
import type { AccessDecision, AccessRequest, CompiledPolicy } from '../../../njs/src/core/policy-contract.js';
import { LOCAL_SOURCE } from '../authenticators/local.js';
import { isAppError } from '../errors.js';
import { compilePolicy, lintCompiledPolicy, loadPolicyFile, policyAppNames } from '../policy/compile-policy.js';
import { lintNginxApps } from '../policy/nginx-apps.js';
import { APP_NAME } from '../policy/parse-policy.js';
import { createPool, runMigrations } from '../storage/db.js';
import { resolveStore } from '../storage/embedded.js';
import { createUsersRepo } from '../storage/users-repo.js';
import { describeCause, oneLine, parseCommandArgs, UsageError } from './cli-text.js';

/**
 * The logic of `npm run policy -- <command>` (the bin is policy.ts): validate the access-policy file
 * and ask what it decides for one request, with the same compiler and the same evaluator
 * (njs/src/core/policy.ts `decideAccess`) the gate uses.
 *
 * Exit codes: 0 done (for `check`, whatever the decision); 1 the command could not be carried out
 * (policy invalid or unreadable, unknown user, store unavailable, output not writable); 2 usage error.
 */

export interface PolicyCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
  /** Clock in milliseconds since the epoch; Date.now when omitted. */
  now?: () => number;
}

export const DEFAULT_POLICY_FILE = 'nginx/policy.yaml';

const USAGE = `Usage: npm run policy -- <command> [options]

Commands:
  lint [--file PATH] [--nginx DIR]
      Validate the policy file and report every problem at once.
  check --path P [--app NAME] [--method GET] [--user NAME | --claims JSON] [--ip ADDR] [--at ISO-TIME] [--file PATH]
      Print the decision for one request and the rule that made it, e.g.
        allow (rule federation-members)
        deny (rule default)
  compile --out FILE [--file PATH] [--nginx DIR]
      Validate the policy file and write the compiled policy the gate loads (runtime/policy.json)
      to FILE atomically; then reload nginx (make reload does both for make up).
  help
      Show this text.

Options:
  --file PATH      policy file (.yaml, .yml or .json); default POLICY_FILE, else ${DEFAULT_POLICY_FILE}
  --path P         the request path exactly as nginx's normalised $uri would be: no query string, and
                   '%XX' escapes, '//', '/./' and '/../' already resolved (check warns when it looks
                   unnormalised). As in the gate, ';params' are cut, and a path the gate finds ambiguous
                   (backslash, '..;', a '%XX' left after decoding) is reported as bad-request.
  --out FILE       where compile writes the compiled policy
  --nginx DIR      the nginx config folder (default NGINX_CONF_DIR, else not scanned): every
                   'set $gate_app NAME;' in its *.conf and *.conf.template files must name an app of
                   the policy's apps: (an error otherwise); a policy app no file names is a warning
  --app NAME       the app the request belongs to (the location's 'set $gate_app NAME;'); default:
                   the default app (the policy's top-level default and rules)
  --method M       HTTP method (default GET)
  --user NAME      claims of a local user ('kirk' or 'local:kirk') from the store: DATABASE_URL if
                   set, else the embedded store in DATA_DIR (default ./data)
  --claims JSON    claims as a JSON object, as the auth service signs them, e.g.
                   '{"src":"oidc","sub":"00u1a2b3","username":"kirk","email":"kirk@example.com",
                     "email_verified":true,"groups":["Federation"]}'
                   (users: rules match src and sub/username: 'oidc:00u1a2b3', 'local:kirk';
                   email_domain needs "email_verified":true; neither --user nor --claims: anonymous)
  --ip ADDR        client address ($remote_addr); without it, sourceIps conditions never match
  --at ISO-TIME    the instant to decide at, with a zone, e.g. 2026-03-27T08:30:00+01:00 (default: now);
                   the policy is compiled as of that instant too
`;

/** The command was understood but cannot be carried out: exit 1. */
class CommandError extends Error {}

type Options = ParseArgsConfig['options'];

const COMMANDS: Record<string, Options> = {
  lint: { file: { type: 'string' }, nginx: { type: 'string' } },
  compile: { file: { type: 'string' }, out: { type: 'string' }, nginx: { type: 'string' } },
  check: {
    file: { type: 'string' },
    app: { type: 'string' },
    path: { type: 'string' },
    method: { type: 'string' },
    user: { type: 'string' },
    claims: { type: 'string' },
    ip: { type: 'string' },
    at: { type: 'string' },
  },
};

type Values = Record<string, string | undefined>;

function parseCommandLine(argv: string[]): { command: string; values: Values } | 'help' {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given (try "help")');
  if (command === 'help' || command === '--help' || command === '-h') return 'help';
  const options = COMMANDS[command];
  if (!options) throw new UsageError(`unknown command ${JSON.stringify(command)} (try "help")`);
  const parsed = parseCommandArgs(command, rest, options);
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])} for "${command}"`);
  return { command, values: parsed.values as Values };
}

function policyFile(values: Values, env: PolicyCliIo['env']): string {
  return values.file || env.POLICY_FILE || DEFAULT_POLICY_FILE;
}

/** --nginx DIR, else NGINX_CONF_DIR, else none (no scan). */
function nginxDir(values: Values, env: PolicyCliIo['env']): string | undefined {
  return values.nginx || env.NGINX_CONF_DIR || undefined;
}

/**
 * Loads and compiles the file, and with `nginx` checks the apps the nginx config names against it;
 * every error becomes one `error:` line on stderr.
 */
function compileFile(file: string, nowSeconds: number, io: PolicyCliIo, nginx?: string): { compiled: CompiledPolicy; warnings: string[] } | null {
  let source: unknown;
  try {
    source = loadPolicyFile(file);
  } catch (err) {
    throw new CommandError(`cannot read policy file ${file}: ${(err as Error).message}`);
  }
  const result = compilePolicy(source, { now: nowSeconds });
  const apps = result.ok && nginx !== undefined ? lintNginxApps(nginx, result.compiled) : { errors: [], warnings: [] };
  const errors = result.ok ? apps.errors : result.errors;
  if (errors.length > 0) {
    for (const e of errors) io.stderr.write(`error: ${oneLine(e)}\n`);
    io.stderr.write(`${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
    return null;
  }
  const compiled = (result as { compiled: CompiledPolicy }).compiled;
  return { compiled, warnings: [...(result as { warnings: string[] }).warnings, ...apps.warnings, ...lintCompiledPolicy(compiled, nowSeconds)] };
}

function runLint(values: Values, io: PolicyCliIo, nowSeconds: number): number {
  const file = policyFile(values, io.env);
  const out = compileFile(file, nowSeconds, io, nginxDir(values, io.env));
  if (!out) return 1;
  const n = out.compiled.rules.length;
  io.stdout.write(`ok: ${n} rule${n === 1 ? '' : 's'} (${file}, default ${out.compiled.default})${appsSummary(out.compiled)}\n`);
  for (const w of out.warnings) io.stdout.write(`warning: ${oneLine(w)}\n`);
  return 0;
}

async function runCompile(values: Values, io: PolicyCliIo, nowSeconds: number): Promise<number> {
  const outFile = values.out;
  if (outFile === undefined || outFile === '') throw new UsageError('"compile" needs --out FILE (e.g. the runtime/policy.json next to the gate config)');
  const file = policyFile(values, io.env);
  const out = compileFile(file, nowSeconds, io, nginxDir(values, io.env));
  if (!out) return 1;
  for (const w of out.warnings) io.stderr.write(`warning: ${oneLine(w)}\n`);
  try {
    await writeGateConfig(outFile, out.compiled);
  } catch (err) {
    throw new CommandError(`cannot write ${outFile}: ${(err as Error).message}`);
  }
  const n = out.compiled.rules.length;
  io.stdout.write(`compiled: ${n} rule${n === 1 ? '' : 's'} (${file}, default ${out.compiled.default})${appsSummary(out.compiled)} -> ${outFile}; reload nginx to apply\n`);
  return 0;
}

/** ', apps: finance (2 rules, default deny), hr (...)' or '' without apps. */
function appsSummary(compiled: CompiledPolicy): string {
  const names = policyAppNames(compiled);
  if (names.length === 0) return '';
  const apps = compiled.apps as { [app: string]: CompiledPolicy };
  return `; apps: ${names.map((a) => `${a} (${apps[a].rules.length} rule${apps[a].rules.length === 1 ? '' : 's'}, default ${apps[a].default})`).join(', ')}`;
}

interface CheckRequest {
  file: string;
  /** '' for the default app. */
  app: string;
  method: string;
  path: string;
  user: string | undefined;
  claims: { [claim: string]: unknown } | null;
  remoteAddr: string;
  /** Milliseconds since the epoch, when --at was given. */
  at: number | undefined;
}

function validateCheck(values: Values, io: PolicyCliIo): CheckRequest {
  const p = values.path;
  if (p === undefined) throw new UsageError('"check" needs --path');
  if (!p.startsWith('/')) throw new UsageError(`--path must start with '/' (got ${JSON.stringify(p)})`);
  if (p.includes('?') || p.includes('#')) {
    throw new UsageError("--path must not contain '?' or '#': the query string is never part of the path the gate matches");
  }
  const method = (values.method ?? 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method must be an HTTP method (got ${JSON.stringify(values.method)})`);
  if (values.user !== undefined && values.claims !== undefined) throw new UsageError('give --user or --claims, not both');
  if (values.user !== undefined && values.user.trim() === '') throw new UsageError('--user needs a username');
  let user = values.user;
  if (user !== undefined && user.includes(':')) {
    // The store holds local users only; other sources' claims come from their provider.
    if (!user.toLowerCase().startsWith(`${LOCAL_SOURCE}:`)) {
      throw new UsageError(`--user takes a local user ('kirk' or 'local:kirk'); for ${JSON.stringify(user)} give the claims with --claims, e.g. '{"src":"oidc","sub":"...","username":"..."}'`);
    }
    user = user.slice(LOCAL_SOURCE.length + 1);
  }
  let claims: { [claim: string]: unknown } | null = null;
  if (values.claims !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.claims);
    } catch (err) {
      throw new UsageError(`--claims is not valid JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--claims must be a JSON object');
    claims = parsed as { [claim: string]: unknown };
    if (claims.src === undefined) {
      // As the gate sees it, a token without src matches no users: rule; say so rather than surprise.
      io.stderr.write('note: --claims has no "src"; users: conditions match only source-qualified users (src local, tableau, oidc, ...)\n');
    }
  }
  const remoteAddr = values.ip ?? '';
  if (values.ip !== undefined && isIP(values.ip) === 0) throw new UsageError(`--ip must be an IPv4 or IPv6 address (got ${JSON.stringify(values.ip)})`);
  let at: number | undefined;
  if (values.at !== undefined) {
    // Without an explicit zone Date.parse would read the time in the machine's zone: refuse the ambiguity.
    at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(values.at) ? Date.parse(values.at) : NaN;
    if (Number.isNaN(at)) throw new UsageError(`--at must be an ISO time with a zone, e.g. 2026-03-27T08:30:00Z (got ${JSON.stringify(values.at)})`);
  }
  // nginx resolves these before the gate runs; a rule never sees them, so say what is being checked.
  if (/%|\/\/|\/\.(\/|$)|\/\.\.(\/|$)/.test(p)) {
    io.stderr.write(
      `warning: --path ${JSON.stringify(p)} is not normalised; nginx decodes '%XX' and resolves '//', '/./' and '/../' ` +
        'before the gate matches $uri, so the gate would see a different path\n',
    );
  }
  const app = values.app ?? '';
  if (app !== '' && !APP_NAME.test(app)) throw new UsageError(`--app must be an app name: lower-case letters, digits, _ and -, starting with a letter or digit, at most 32 (got ${JSON.stringify(app)})`);
  return { file: policyFile(values, io.env), app, method, path: p, user, claims, remoteAddr, at };
}

/** The claims the auth service signs for a local user (see authenticators/local.ts and session-token.ts). */
async function loadUserClaims(username: string, io: PolicyCliIo): Promise<{ [claim: string]: unknown }> {
  const dataDir = io.env.DATA_DIR || './data';
  const store = await resolveStore({ databaseUrl: io.env.DATABASE_URL, dataDir });
  if (store.kind !== 'postgres') io.stderr.write(`note: using the embedded store in ${path.resolve(dataDir)} (set DATABASE_URL for PostgreSQL)\n`);
  try {
    const pool = createPool(store.url, { max: 1, applicationName: 'identity-gateway-policy-cli', logger: { warn: () => undefined } });
    try {
      await runMigrations(pool);
      const user = await createUsersRepo(pool).findByUsername(username);
      if (!user) throw new CommandError(`no user named ${JSON.stringify(username)}`);
      if (user.disabled) io.stderr.write(`note: user ${user.username} is disabled and cannot log in; showing what the policy would decide anyway\n`);
      const claims: { [claim: string]: unknown } = { sub: user.id, username: user.username, groups: [...user.groups], src: LOCAL_SOURCE };
      if (user.fullName) claims.name = user.fullName;
      // Local e-mail addresses are set by an admin: the auth service signs them as verified.
      if (user.email) {
        claims.email = user.email;
        claims.email_verified = true;
      }
      return claims;
    } finally {
      await pool.end();
    }
  } finally {
    await store.stop();
  }
}

function formatDecision(d: AccessDecision, anonymous: boolean): string {
  let line = `${d.decision} (rule ${d.rule})`;
  if (d.public) line += d.decision === 'allow' ? ', public: no login needed' : ', public';
  else if (anonymous && d.decision === 'allow') line += ', but no public rule matched: an anonymous request is sent to the login first';
  return line + '\n';
}

async function runCheck(values: Values, io: PolicyCliIo, nowMillis: number): Promise<number> {
  const req = validateCheck(values, io);
  const whenSeconds = Math.floor((req.at ?? nowMillis) / 1000);
  const out = compileFile(req.file, whenSeconds, io);
  if (!out) return 1;
  for (const w of out.warnings) io.stderr.write(`warning: ${oneLine(w)}\n`);
  // The app's own section, as the gate picks it; an app the policy lacks is refused as in the gate.
  const section = appSection(out.compiled, req.app);
  if (section === null) {
    const names = policyAppNames(out.compiled);
    io.stdout.write(`deny (app-unknown): the policy has no app '${req.app}' (apps: ${names.length === 0 ? 'none' : names.join(', ')}); the gate answers 403\n`);
    return 0;
  }
  const claims = req.user !== undefined ? await loadUserClaims(req.user, io) : req.claims;
  // The same path rules as the gate: too long or ambiguous paths refused before any rule is looked at,
  // ;params cut, non-ASCII case-folded (the same core code as the gate).
  if (Buffer.byteLength(req.path) > MAX_POLICY_PATH_LENGTH) {
    io.stdout.write(`bad-request (path-too-long): the gate answers 400 for paths over ${MAX_POLICY_PATH_LENGTH} bytes\n`);
    return 0;
  }
  const gatePath = policyPath(req.path, req.path);
  if (gatePath === null) {
    io.stdout.write('bad-request (path-ambiguous): the gate answers 400 before any rule is looked at\n');
    return 0;
  }
  const request: AccessRequest = { method: req.method, path: gatePath, claims, remoteAddr: req.remoteAddr, now: whenSeconds };
  io.stdout.write(formatDecision(decideAccess(section, request), claims === null));
  return 0;
}

/** Runs one CLI command and returns its exit code. Errors go to `stderr`, one line each, never a stack. */
export async function runPolicyCli(argv: string[], io: PolicyCliIo): Promise<number> {
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    const nowMillis = (io.now ?? Date.now)();
    if (parsed.command === 'lint') return runLint(parsed.values, io, Math.floor(nowMillis / 1000));
    if (parsed.command === 'compile') return await runCompile(parsed.values, io, Math.floor(nowMillis / 1000));
    return await runCheck(parsed.values, io, nowMillis);
  } catch (err) {
    let message: string;
    if (err instanceof UsageError || err instanceof CommandError) message = err.message;
    else if (isAppError(err)) message = err.code === 'ERR_STORE_UNAVAILABLE' ? `${err.safeMessage} (${describeCause(err.cause)})` : err.safeMessage;
    else if (err instanceof Error) message = err.message;
    else message = String(err);
    io.stderr.write(`error: ${oneLine(message)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
