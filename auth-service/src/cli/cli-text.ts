/** Text helpers shared by the operator CLIs (users, policy): one-line errors, never a stack. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** For the operator at the terminal: which connection failed and how (never includes credentials). */
export function describeCause(cause: unknown): string {
  const { code, message, errors } = (cause ?? {}) as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof message === 'string' && message !== '') return message;
  if (Array.isArray(errors) && errors.length > 0) return describeCause(errors[0]);
  return typeof code === 'string' ? code : 'unknown cause';
}

/** Folds a multi-line message into one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** A problem with how a command was called (exit 2). */
export class UsageError extends Error {}

/** The command was understood but cannot be carried out (exit 1). */
export class CommandError extends Error {}

/**
 * `parseArgs` for one sub-command, strict, with its errors turned into short UsageErrors that name
 * the option and the command.
 */
export function parseCommandArgs<T extends ParseArgsConfig['options']>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const option = /'(-[^' ]+)/.exec((err as Error).message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${option} for "${command}"`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`option ${option} needs a value`);
    throw new UsageError((err as Error).message);
  }
}
