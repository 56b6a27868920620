/**
 * Starts the real parts for an integration test: the repo's nginx config in a temporary prefix on
 * free ports, the real auth service (in-process, real HTTP), an echo upstream, and a fresh store
 * (a new database on the real PostgreSQL, or an embedded PGlite store in a temp dir).
 */
import { test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startAuthService } from '../../auth-service/src/main.js';
import { createPasswordHasher, DEFAULT_PASSWORD_POLICY } from '../../auth-service/src/passwords/index.js';
import { createPool, runMigrations } from '../../auth-service/src/storage/db.js';
import { startEmbeddedPostgres } from '../../auth-service/src/storage/embedded.js';
import { createUsersRepo, type UsersRepo } from '../../auth-service/src/storage/users-repo.js';
import { REPO_ROOT, freePort, prepareNginxPrefix, startNginx, waitForPort, type NginxTemplateVars, type RunningNginx, type WafMode } from '../../scripts/lib/nginx-runtime.js';
import { startEchoUpstream, type EchoTls, type EchoUpstream } from './echo-upstream.js';
import { hiddenFields, rawRequest, setCookies, type HttpResult } from './http.js';

export { hiddenFields, rawRequest, setCookies, type HttpResult };
import { createFreshDatabase } from './fresh-database.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export type StoreKind = 'postgres' | 'embedded';

export interface StackOptions {
  store?: StoreKind;
  /** Extra environment for the auth service (e.g. PROXY_IP_BINDING=off). */
  env?: Record<string, string>;
  /**
   * More environment for the auth service that needs the stack's ports (e.g. PUBLIC_BASE_URL on
   * the proxy port), applied over `env`.
   */
  envFor?: (ports: { proxyPort: number; authPort: number }) => Record<string, string>;
  /** Route the service's database connections through a relay the test can cut. */
  cuttableStore?: boolean;
  /** Extra environment for nginx itself (e.g. LD_PRELOAD/FAKETIME to run it at another time). */
  nginxEnv?: Record<string, string>;
  /**
   * Edits a copy of nginx/sites/gateway.conf.template before rendering, e.g. to add the location an
   * operator would add. The repo's files stay untouched.
   */
  editSite?: (template: string) => string;
  /** Extra template values (see NginxTemplateVars), e.g. TABLEAU_API_TIMEOUT_SECONDS. */
  nginxVars?: Partial<NginxTemplateVars>;
  /**
   * Run nginx from this Debian 13 root (scripts/trixie-root.sh: nginx 1.26, njs 0.8) with the
   * revoked-sessions dict rendered in (NJS_REVOCATIONS=on). The stack's temp dir is made inside the
   * root, so that nginx's prefix is reachable from it.
   */
  njs08Root?: string;
  /**
   * Run the auth service as its own process (`node --import tsx auth-service/src/main.ts`, as
   * `make up` and the container run it), so a test can kill -9 it (killAuthService) or measure it.
   */
  authProcess?: boolean;
  /**
   * Serve the echo upstream over https with this certificate; nginx then reaches it as
   * APP_UPSTREAM=https://<host>:<port> (host default localhost), so the rendered config verifies it.
   */
  upstreamTls?: EchoTls & { host?: string };
}


export interface Stack {
  proxyPort: number;
  /** The auth service's own port, for endpoints nginx does not proxy (yet). */
  authPort: number;
  baseUrl: string;
  secret: string;
  previousSecret: string;
  cookieName: string;
  upstream: EchoUpstream;
  nginx: RunningNginx;
  repo: UsersRepo;
  /** The test's own connection to the store (never through dbRelay), and its URL. */
  pool: ReturnType<typeof createPool>;
  databaseUrl: string;
  dbRelay: TcpProxy | null;
  createUser(username: string, password: string, opts?: { groups?: string[]; email?: string; fullName?: string }): Promise<void>;
  /** Raw HTTP request through nginx (no redirects followed, headers sent exactly as given). */
  request(method: string, path: string, headers?: OutgoingHttpHeaders | [string, string][], body?: string | Buffer): Promise<HttpResult>;
  /** GET /login and return the CSRF cookie + form token. */
  loginForm(rd?: string): Promise<{ csrfCookie: string; fields: Record<string, string>; page: HttpResult }>;
  /** Full form login; returns the POST response and the session cookie pair (name=value) if set. */
  login(username: string, password: string, rd?: string): Promise<{ res: HttpResult; session: string | null }>;
  authLogs(): string;
  /**
   * Stops the auth service and starts it again on the same port and gate config file, with `env`
   * over the stack's own (e.g. a rotated JWT_SECRET). It rewrites the gate config; nginx reads it
   * on its next reload (`stack.nginx.reload()`).
   */
  restartAuthService(env: Record<string, string>): Promise<void>;
  /** Stops the auth service (nginx then cannot reach it); restartAuthService({}) brings it back. */
  stopAuthService(): Promise<void>;
  /** authProcess only: sends `signal` (default SIGKILL) to the service's process and waits for its exit. */
  killAuthService(signal?: NodeJS.Signals): Promise<void>;
  /** authProcess only: the service's process id (null while stopped). */
  authPid(): number | null;
  /**
   * Starts another auth service instance on the same store and secrets, on a free port (not behind
   * nginx), as a deployment with several instances has; stopped with the stack. Returns its port.
   */
  startAnotherAuthService(): Promise<number>;
  diagnostics(): string;
  stop(): Promise<void>;
}

/** The WAF's log (every rule a request matched) when the stack runs with the WAF on, for failure messages. */
function wafLog(prefix: string): string {
  const file = join(prefix, 'logs', 'waf.log');
  return existsSync(file) ? `\n--- nginx waf.log ---\n${readFileSync(file, 'utf8')}` : '';
}

interface AuthProcess {
  pid: number | null;
  close(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * The auth service as its own process, as `make up` runs it: main.ts under tsx, its JSON log lines
 * into `logStream`. Resolves once it listens on AUTH_PORT; close() is SIGTERM (a graceful stop).
 */
async function startAuthProcess(env: Record<string, string>, logStream: PassThrough): Promise<AuthProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'auth-service', 'src', 'main.ts')], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => logStream.write(c));
  child.stderr!.on('data', (c: Buffer) => logStream.write(c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForPort(Number(env.AUTH_PORT), 30_000, () => child.exitCode !== null || child.signalCode !== null);
  } catch (err) {
    await kill('SIGKILL');
    throw err;
  }
  return { pid: child.pid ?? null, close: () => kill('SIGTERM'), kill };
}

export const strongSecret = (): string => randomBytes(48).toString('base64url');

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        /* keep cleaning */
      }
    }
  };
  try {
    const tmp = mkdtempSync(join(opts.njs08Root === undefined ? tmpdir() : join(opts.njs08Root, 'tmp'), 'gw-it-'));
    cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));

    let databaseUrl: string;
    if ((opts.store ?? 'postgres') === 'embedded') {
      const emb = await startEmbeddedPostgres({ dataDir: join(tmp, 'data') });
      cleanups.push(() => emb.stop());
      databaseUrl = emb.url;
    } else {
      const db = await createFreshDatabase();
      cleanups.push(() => db.drop());
      databaseUrl = db.url;
    }
    const pool = createPool(databaseUrl);
    cleanups.push(() => pool.end());
    await runMigrations(pool);
    const repo = createUsersRepo(pool);
    const hasher = createPasswordHasher(DEFAULT_PASSWORD_POLICY);

    let dbRelay: TcpProxy | null = null;
    let serviceDbUrl = databaseUrl;
    if (opts.cuttableStore) {
      const u = new URL(databaseUrl);
      dbRelay = await startTcpProxy(u.hostname, Number(u.port || 5432));
      cleanups.push(() => dbRelay?.close());
      u.port = String(dbRelay.port);
      serviceDbUrl = u.toString();
    }

    const upstream = await startEchoUpstream({ tls: opts.upstreamTls });
    cleanups.push(() => upstream.close());

    const proxyPort = await freePort();
    const authPort = await freePort();
    let sourceDir: string | undefined;
    if (opts.editSite) {
      sourceDir = join(tmp, 'nginx-source');
      cpSync(join(REPO_ROOT, 'nginx'), sourceDir, { recursive: true });
      const site = join(sourceDir, 'sites', 'gateway.conf.template');
      writeFileSync(site, opts.editSite(readFileSync(site, 'utf8')));
    }
    const { prefix, gateConfigFile } = prepareNginxPrefix({
      // Named as `make up` names its runtime dir, so `make reload` finds it (DATA_DIR=tmp PROXY_PORT=port).
      prefix: join(tmp, `nginx-${proxyPort}`),
      sourceDir,
      vars: {
        PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
        APP_UPSTREAM: opts.upstreamTls ? `https://${opts.upstreamTls.host ?? 'localhost'}:${upstream.port}` : `127.0.0.1:${upstream.port}`,
        AUTH_UPSTREAM: `127.0.0.1:${authPort}`,
        // TEST_WAF_MODE=On runs any integration suite behind the WAF (docs/waf.md): the false-positive check.
        ...(process.env.TEST_WAF_MODE ? { WAF_MODE: process.env.TEST_WAF_MODE as WafMode } : {}),
        ...opts.nginxVars,
      },
      revocations: opts.njs08Root !== undefined,
    });

    const secret = strongSecret();
    const previousSecret = strongSecret();
    const logStream = new PassThrough();
    let logs = '';
    logStream.on('data', (chunk: Buffer) => {
      logs += chunk.toString('utf8');
    });
    const authEnv: Record<string, string> = {
      DATABASE_URL: serviceDbUrl,
      JWT_SECRET: secret,
      // A previous key in its grace period, as after a rotation (retires in a day).
      JWT_PREVIOUS_SECRETS: `${previousSecret}@${new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000).toISOString()}`,
      AUTH_HOST: '127.0.0.1',
      AUTH_PORT: String(authPort),
      AUTH_COOKIE_SECURE: 'false',
      GATE_CONFIG_FILE: gateConfigFile,
      LOG_LEVEL: 'info',
      ...opts.env,
      ...opts.envFor?.({ proxyPort, authPort }),
    };
    const startAuth = (env: Record<string, string>): Promise<{ close(): Promise<void>; pid: number | null }> =>
      opts.authProcess ? startAuthProcess(env, logStream) : startAuthService(env, { logStream }).then((a) => ({ close: () => a.close(), pid: null }));
    let auth = await startAuth(authEnv);
    let authStopped = false;
    cleanups.push(() => (authStopped ? undefined : auth.close()));

    const nginx = await startNginx(prefix, proxyPort, 10_000, opts.nginxEnv ? { ...process.env, ...opts.nginxEnv } : undefined, opts.njs08Root);
    cleanups.push(() => nginx.stop());

    const request = (method: string, path: string, headers: OutgoingHttpHeaders | [string, string][] = {}, body?: string | Buffer) =>
      rawRequest(proxyPort, method, path, headers, body);

    const stack: Stack = {
      proxyPort,
      authPort,
      baseUrl: `http://127.0.0.1:${proxyPort}`,
      secret,
      previousSecret,
      cookieName: opts.env?.SESSION_COOKIE_NAME ?? 'gw_session',
      upstream,
      nginx,
      repo,
      pool,
      databaseUrl,
      dbRelay,
      async createUser(username, password, o = {}) {
        await repo.create({
          username,
          passwordHash: await hasher.hash(password),
          groups: o.groups ?? [],
          email: o.email ?? null,
          fullName: o.fullName ?? null,
        });
      },
      request,
      async loginForm(rd) {
        const page = await request('GET', '/login' + (rd === undefined ? '' : '?rd=' + encodeURIComponent(rd)), { accept: 'text/html' });
        const csrfCookie = setCookies(page)
          .map((c) => c.split(';')[0])
          .find((c) => c.startsWith('gw_csrf='));
        if (!csrfCookie) throw new Error(`no CSRF cookie on the login form (status ${page.status})`);
        return { csrfCookie, fields: hiddenFields(page.body), page };
      },
      async login(username, password, rd) {
        const form = await stack.loginForm(rd);
        const body = new URLSearchParams({ ...form.fields, username, password }).toString();
        const res = await request(
          'POST',
          '/login',
          {
            accept: 'text/html',
            'content-type': 'application/x-www-form-urlencoded',
            cookie: form.csrfCookie,
            origin: `http://127.0.0.1:${proxyPort}`,
            'content-length': String(Buffer.byteLength(body)),
          },
          body,
        );
        const session = setCookies(res)
          .map((c) => c.split(';')[0])
          .find((c) => c.startsWith(stack.cookieName + '=') && c.length > stack.cookieName.length + 1);
        return { res, session: session ?? null };
      },
      authLogs: () => logs,
      async startAnotherAuthService() {
        const another = await startAuthService({ ...authEnv, AUTH_PORT: '0', GATE_CONFIG_FILE: join(tmp, `gate-config-${cleanups.length}.json`) }, { logStream });
        cleanups.push(() => another.close());
        return another.port;
      },
      async restartAuthService(env) {
        if (!authStopped) await auth.close();
        auth = await startAuth({ ...authEnv, ...env });
        authStopped = false;
      },
      async stopAuthService() {
        if (!authStopped) await auth.close();
        authStopped = true;
      },
      async killAuthService(signal = 'SIGKILL') {
        const child = auth as Partial<AuthProcess>;
        if (!opts.authProcess || child.kill === undefined) throw new Error('killAuthService needs startStack({ authProcess: true })');
        if (!authStopped) await child.kill(signal);
        authStopped = true;
      },
      authPid: () => (authStopped ? null : auth.pid),
      diagnostics: () =>
        `--- nginx error.log ---\n${nginx.errorLog()}\n--- nginx access.log ---\n${nginx.accessLog()}\n--- auth service ---\n${logs}${wafLog(prefix)}`,
      stop: cleanup,
    };
    return stack;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * A StackOptions.editSite that adds `location /down/`, protected, whose upstream (port 9, discard)
 * refuses connections: nginx then answers 502 itself, with its 50x page for the app.
 */
export function withDownLocation(site: string): string {
  return site.replace(
    '    include snippets/gate-server.conf;',
    `    include snippets/gate-server.conf;
    location /down/ {
        include snippets/protect.conf;
        proxy_pass http://127.0.0.1:9/;
    }`,
  );
}

/**
 * `test` that appends the nginx and auth service logs to the failure message, so a red run shows
 * what the real parts did.
 */
export function stackTest(getStack: () => Stack) {
  return (name: string, fn: () => Promise<void>, timeout?: number): void => {
    test(
      name,
      async () => {
        try {
          await fn();
        } catch (err) {
          if (err instanceof Error) err.message += '\n' + getStack().diagnostics();
          throw err;
        }
      },
      timeout,
    );
  };
}

/** One parsed line of nginx's JSON access log (nginx/gate.conf, log_format gate_json). */
export type AccessLogEntry = Record<string, unknown>;

/**
 * The newest access-log entry matching `match`, waiting up to `timeoutMs` for it: nginx writes the
 * line after the response has gone out, so a fast client can read the log before it is there.
 */
export async function accessLogEntry(nginx: RunningNginx, match: (e: AccessLogEntry) => boolean, timeoutMs = 3000): Promise<AccessLogEntry | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = nginx.accessLog().trim();
    const entries = text === '' ? [] : text.split('\n').map((l) => JSON.parse(l) as AccessLogEntry);
    const found = entries.filter(match).pop();
    if (found !== undefined || Date.now() >= deadline) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
}
