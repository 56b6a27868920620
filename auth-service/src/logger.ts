import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Belt and braces: code never passes these, but if a future log call does, pino replaces the value.
 * Paths are exact (pino redaction is not recursive), so the common shapes are listed.
 */
const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  'cookie',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.cookie',
  '*.authorization',
  'headers.cookie',
  'headers.authorization',
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
];

/** What a request's log lines share: the client address as the service sees it (client-ip.ts). */
interface RequestScope {
  clientIp: string;
  /** The app the request came through (X-Gateway-App, validated in app.ts); null: the default app. */
  app: string | null;
}

const requestScope = new AsyncLocalStorage<RequestScope>();

/**
 * Runs `fn` (a request's handling) so that every auth event it logs carries `ip: clientIp`, including
 * those of services that never see the request. Each request has its own scope.
 */
export function runInRequestScope<T>(clientIp: string, fn: () => T, app: string | null = null): T {
  return requestScope.run({ clientIp, app }, fn);
}

/**
 * The app of the request being handled (runInRequestScope), or null: the default app, or no request
 * (a CLI). The audit trail records it on every event written while handling the request
 * (storage/audit-repo.ts), so the services that write events need not carry it.
 */
export function requestApp(): string | null {
  return requestScope.getStore()?.app ?? null;
}

/**
 * The options every auth-service logger shares (tests too): ISO-8601 UTC timestamps (`time`, as
 * nginx's `$time_iso8601`), the level as a word, redaction, and the client address on the auth events
 * (`auth_success`, `auth_failure`, `auth_error`) logged inside a request scope, unless the line names one.
 */
export const LOG_OPTIONS: LoggerOptions = {
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  mixin(fields) {
    const event = (fields as { event?: unknown }).event;
    const scope = requestScope.getStore();
    if (scope === undefined || typeof event !== 'string' || !event.startsWith('auth_') || 'ip' in fields) return {};
    return { ip: scope.clientIp };
  },
};

/**
 * JSON-lines logger (one object per line on stdout unless `destination` is given). Every auth
 * event carries `event` and `request_id`; callers log usernames but never passwords, tokens,
 * cookies or secrets.
 */
export function createLogger(opts: { level: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    {
      ...LOG_OPTIONS,
      level: opts.level,
      base: { service: 'auth-service' },
    },
    opts.destination,
  );
}

/** Error name, code and message only: never the stack, and never anything from the request. */
export function errorSummary(err: unknown): { name?: string; code?: string; message?: string } {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return {
    name: typeof e.name === 'string' ? e.name : undefined,
    code: typeof e.code === 'string' ? e.code : undefined,
    message: typeof e.message === 'string' ? e.message : undefined,
  };
}
