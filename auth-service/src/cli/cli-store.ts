/** Opening the store and reporting errors the same way in every operator CLI (users, sessions, audit). */
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type pg from 'pg';
import { isAppError } from '../errors.js';
import { createPool, runMigrations } from '../storage/db.js';
import { resolveStore } from '../storage/embedded.js';
import { CommandError, describeCause, oneLine, parseCommandArgs, UsageError } from './cli-text.js';

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
}

/**
 * Runs `fn` with a migrated pool on DATABASE_URL, or on the embedded store in DATA_DIR (default
 * ./data), going through the running gateway's embedded server if there is one (with a note on
 * stderr). Closes everything afterwards.
 */
export async function withStore<T>(io: CliIo, applicationName: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const store = await resolveStore({ databaseUrl: io.env.DATABASE_URL, dataDir: io.env.DATA_DIR || './data' });
  if (store.kind !== 'postgres') {
    io.stderr.write(`note: using the embedded store in ${path.resolve(io.env.DATA_DIR || './data')} (set DATABASE_URL for PostgreSQL)\n`);
  }
  try {
    const pool = createPool(store.url, { max: 2, applicationName, logger: { warn: () => undefined } });
    try {
      await runMigrations(pool);
      return await fn(pool);
    } finally {
      await pool.end();
    }
  } finally {
    await store.stop();
  }
}

/** Writes `err` as one `error: …` line (never a stack) and returns the exit code: 2 usage, 1 otherwise. */
export function reportCliError(io: CliIo, err: unknown): number {
  let message: string;
  if (err instanceof CommandError) message = err.message;
  else if (isAppError(err)) message = err.code === 'ERR_STORE_UNAVAILABLE' ? `${err.safeMessage} (${describeCause(err.cause)})` : err.safeMessage;
  else if (err instanceof Error) message = err.message;
  else message = String(err);
  io.stderr.write(`error: ${oneLine(message)}\n`);
  return err instanceof UsageError ? 2 : 1;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** One sub-command: its options and exactly how many positional arguments it takes. */
export interface CommandSpec {
  options: ParseArgsConfig['options'];
  positionals: number;
  /** How the positionals are called in messages, e.g. `<sid>`. */
  names: string;
}

/**
 * `<command> [options] [arguments]` against `commands`: 'help' for help/--help/-h, else the command
 * with its option values and positionals. Throws UsageError (no command, unknown command or option,
 * missing or extra arguments).
 */
export function parseCommand(
  argv: string[],
  commands: Record<string, CommandSpec>,
): 'help' | { command: string; values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given (try "help")');
  if (command === 'help' || command === '--help' || command === '-h') return 'help';
  const spec = Object.prototype.hasOwnProperty.call(commands, command) ? commands[command] : undefined;
  if (!spec) throw new UsageError(`unknown command ${JSON.stringify(command)} (try "help")`);
  // A command without options takes its arguments as they are: a session id may start with '-'
  // (base64url), and `sessions revoke -x...` must not read as an unknown option.
  const parsed = Object.keys(spec.options ?? {}).length === 0 ? { values: {}, positionals: rest[0] === '--' ? rest.slice(1) : rest } : parseCommandArgs(command, rest, spec.options);
  const { positionals } = parsed;
  if (positionals.length < spec.positionals) throw new UsageError(`"${command}" needs ${spec.names}`);
  if (positionals.length > spec.positionals) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[spec.positionals])} for "${command}"`);
  return { command, values: parsed.values as Record<string, string | boolean | undefined>, positionals };
}

/** A `--user` value: a local username or `<source>:<name>`; anything with spaces or controls is refused. */
export function checkUserOption(user: string | boolean | undefined): string | undefined {
  if (user === undefined) return undefined;
  if (typeof user !== 'string' || user === '' || user.length > 300 || /[\s\u0000-\u001f\u007f]/.test(user)) {
    throw new CommandError(`invalid user ${JSON.stringify(user)}: a local username, or <source>:<name> such as tableau:kirk`);
  }
  return user;
}
