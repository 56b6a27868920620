/**
 * How the users CLI reads a new password: at a terminal, typed twice at a prompt that shows nothing
 * (issue 8: the old prompt echoed it); otherwise stdin read to the end, for scripts.
 */
import { CommandError } from './cli-text.js';

export const MAX_PASSWORD_BYTES = 1024;

export interface PasswordInput {
  /** With `isTTY` and `setRawMode` (a terminal), the password is typed at a prompt without echo. */
  stdin: AsyncIterable<Buffer | string> & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** Prompts go here, so stdout stays the command's output. */
  stderr: { write(text: string): unknown };
}

function decodePassword(bytes: Buffer, where: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CommandError(`password ${where} is not valid UTF-8`);
  }
}

const ENTER = new Set([0x0a, 0x0d]);
const ERASE = new Set([0x08, 0x7f]);
const CTRL_C = 0x03;
const CTRL_D = 0x04;

/**
 * Reads lines typed at a terminal in raw mode, so the terminal shows nothing of them (the plain
 * prompt used to echo the password). Enter ends a line; Backspace erases one character; Ctrl-C or
 * Ctrl-D on an empty line cancels.
 */
function rawLineReader(io: PasswordInput): { readLine(prompt: string): Promise<string>; close(): void } {
  const source = io.stdin[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  io.stdin.setRawMode!(true);
  return {
    async readLine(prompt) {
      io.stderr.write(prompt);
      const line: number[] = [];
      for (;;) {
        if (pending.length === 0) {
          const next = await source.next();
          if (next.done) throw new CommandError('no password typed');
          pending = typeof next.value === 'string' ? Buffer.from(next.value, 'utf8') : next.value;
          continue;
        }
        const byte = pending[0]!;
        pending = pending.subarray(1);
        if (ENTER.has(byte)) {
          if (byte === 0x0d && pending[0] === 0x0a) pending = pending.subarray(1);
          break;
        }
        if (byte === CTRL_C || (byte === CTRL_D && line.length === 0)) {
          io.stderr.write('\n');
          throw new CommandError('cancelled');
        }
        if (ERASE.has(byte)) {
          // Drop one whole UTF-8 character: its continuation bytes, then its lead byte.
          while (line.length > 0 && (line[line.length - 1]! & 0xc0) === 0x80) line.pop();
          line.pop();
          continue;
        }
        if (line.length > MAX_PASSWORD_BYTES) throw new CommandError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
        line.push(byte);
      }
      io.stderr.write('\n');
      return decodePassword(Buffer.from(line), 'typed');
    },
    close() {
      io.stdin.setRawMode!(false);
      void source.return?.();
    },
  };
}

/** Asks twice at the terminal, without echo; the two must match. */
async function promptPassword(io: PasswordInput): Promise<string> {
  const reader = rawLineReader(io);
  try {
    const first = await reader.readLine('New password: ');
    if (first === '') throw new CommandError('empty password');
    const second = await reader.readLine('Repeat it: ');
    if (second !== first) throw new CommandError('the two passwords do not match; nothing was changed');
    return first;
  } finally {
    reader.close();
  }
}

/**
 * At a terminal: promptPassword. Otherwise reads stdin to the end, strips one trailing "\n" or
 * "\r\n", rejects empty or oversized input.
 */
export async function readPassword(io: PasswordInput): Promise<string> {
  if (io.stdin.isTTY && typeof io.stdin.setRawMode === 'function') return await promptPassword(io);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    size += buf.length;
    if (size > MAX_PASSWORD_BYTES + 2) throw new CommandError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
    chunks.push(buf);
  }
  let text = decodePassword(Buffer.concat(chunks), 'on stdin');
  text = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (text === '') throw new CommandError('empty password on stdin');
  if (Buffer.byteLength(text) > MAX_PASSWORD_BYTES) throw new CommandError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  return text;
}
