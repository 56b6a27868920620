import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppError } from '../errors.js';
import type { AuthContext, AuthOutcome, Identity, PasswordAuthenticator, RefreshOutcome } from './types.js';
import { RESERVED_CLAIMS } from '../services/session-token.js';

/** Prefix of the `src` claim of every identity a custom module returns. */
export const CUSTOM_SOURCE_PREFIX = 'custom:';
export const DEFAULT_CUSTOM_TIMEOUT_MS = 5000;

/** Shown to the user whenever the module breaks; the module's own error text only goes to `cause`. */
export const CUSTOM_UNAVAILABLE_MESSAGE = 'The sign-in provider is not available right now.';

/**
 * Claims the session token owns. Kept in step with session-token.ts, which drops them again when
 * signing; dropping them here as well keeps them out of the identity that the login flow logs.
 */

const ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const OUTCOME_KINDS = new Set(['success', 'not-found', 'invalid', 'disabled']);
const MAX_TEXT_LENGTH = 256;

export interface CustomAuthenticatorOptions {
  /** How long one `authenticate` call may take before it counts as a failure (ms). */
  timeoutMs?: number;
}

function configError(modulePath: string, problem: string, cause?: unknown): AppError {
  return new AppError('ERR_CONFIG', 500, `AUTH_CUSTOM_MODULE (${modulePath}): ${problem}`, { cause });
}

function unavailable(cause: unknown): AppError {
  return new AppError('ERR_INTERNAL', 503, CUSTOM_UNAVAILABLE_MESSAGE, { cause });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Checks the loaded value and returns a problem description, or null when it is usable. */
function shapeProblem(candidate: unknown): string | null {
  if (!isObject(candidate)) return `the export must be an authenticator object, got ${describe(candidate)}`;
  if (typeof candidate.authenticate !== 'function') return 'the authenticator has no `authenticate` function';
  if (typeof candidate.id !== 'string' || !ID_PATTERN.test(candidate.id)) {
    return 'the authenticator `id` must be 1-32 characters of a-z, 0-9 and "-", starting and ending with a letter or digit';
  }
  if (candidate.refresh !== undefined && typeof candidate.refresh !== 'function') return 'the authenticator `refresh` must be a function when present';
  return null;
}

function checkText(field: string, value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw new Error(`identity.${field} must be a non-empty string`);
  if (value.length > MAX_TEXT_LENGTH) throw new Error(`identity.${field} is longer than ${MAX_TEXT_LENGTH} characters`);
  if (CONTROL_CHARS.test(value)) throw new Error(`identity.${field} contains control characters`);
  return value;
}

/** Builds a fresh identity from what the module returned, or throws a description for the logs. */
function normaliseIdentity(raw: unknown, src: string): Identity {
  if (!isObject(raw)) throw new Error(`identity must be an object, got ${describe(raw)}`);
  const sub = checkText('sub', raw.sub, true) as string;
  const username = checkText('username', raw.username, true) as string;
  const name = checkText('name', raw.name, false);
  const email = checkText('email', raw.email, false);
  if (!Array.isArray(raw.groups)) throw new Error('identity.groups must be an array of strings');
  const groups = raw.groups.map((group, i) => {
    // Groups travel comma-joined in an upstream header, so a comma would forge a second group.
    if (typeof group !== 'string' || group.length === 0 || group.includes(',') || CONTROL_CHARS.test(group)) {
      throw new Error(`identity.groups[${i}] must be a non-empty string without commas or control characters`);
    }
    return group;
  });
  const identity: Identity = { sub, username, groups, src };
  if (name !== undefined) identity.name = name;
  if (email !== undefined) identity.email = email;
  if (raw.extraClaims !== undefined) {
    if (!isObject(raw.extraClaims)) throw new Error('identity.extraClaims must be a plain object');
    const extraClaims: Record<string, unknown> = {};
    for (const [claim, value] of Object.entries(raw.extraClaims)) {
      if (!RESERVED_CLAIMS.has(claim)) extraClaims[claim] = value;
    }
    if (Object.keys(extraClaims).length > 0) identity.extraClaims = extraClaims;
  }
  return identity;
}

function normaliseOutcome(raw: unknown, src: string): AuthOutcome {
  if (!isObject(raw) || typeof raw.kind !== 'string' || !OUTCOME_KINDS.has(raw.kind)) {
    throw new Error(`authenticate() resolved to an unknown outcome (${isObject(raw) ? `kind ${JSON.stringify(raw.kind)}` : describe(raw)})`);
  }
  if (raw.kind === 'success') return { kind: 'success', identity: normaliseIdentity(raw.identity, src) };
  return { kind: raw.kind as 'not-found' | 'invalid' | 'disabled' };
}

/**
 * What `refresh()` resolved to: `{kind: 'refused'}`, or `{kind: 'success', identity}` naming the same
 * `sub` and `username` as the session (another account is a broken module, not a refusal).
 */
function normaliseRefresh(raw: unknown, session: Identity): RefreshOutcome {
  if (isObject(raw) && raw.kind === 'refused') return { kind: 'refused' };
  if (!isObject(raw) || raw.kind !== 'success') {
    throw new Error(`refresh() resolved to an unknown outcome (${isObject(raw) ? `kind ${JSON.stringify(raw.kind)}` : describe(raw)})`);
  }
  const identity = normaliseIdentity(raw.identity, session.src);
  if (identity.sub !== session.sub || identity.username !== session.username) throw new Error('refresh() returned another sub or username than the session has');
  return { kind: 'success', identity };
}

async function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}() took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  // The module's promise may still settle after the timeout; nobody awaits it then.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function wrap(inner: PasswordAuthenticator, timeoutMs: number): PasswordAuthenticator {
  const src = `${CUSTOM_SOURCE_PREFIX}${inner.id}`;
  const refresh = inner.refresh;
  return {
    ...(refresh === undefined
      ? {}
      : {
          async refresh(identity: Identity, ctx: AuthContext): Promise<RefreshOutcome> {
            try {
              // A copy: the module cannot change the session's identity in place.
              const call = Promise.resolve().then(() => refresh.call(inner, structuredClone(identity), { ...ctx }));
              return normaliseRefresh(await withTimeout(call, timeoutMs, 'refresh'), identity);
            } catch (err) {
              throw unavailable(err);
            }
          },
        }),
    id: src,
    async authenticate(input, ctx: AuthContext): Promise<AuthOutcome> {
      let raw: unknown;
      try {
        // Copies, so the module cannot change what the caller holds.
        const call = Promise.resolve().then(() => inner.authenticate({ ...input }, { ...ctx }));
        raw = await withTimeout(call, timeoutMs, 'authenticate');
        return normaliseOutcome(raw, src);
      } catch (err) {
        throw unavailable(err);
      }
    },
  };
}

/**
 * Loads an operator-supplied ES module that authenticates usernames and passwords.
 *
 * The module's default export (or, without one, its named export `authenticator`) is either an
 * authenticator object or a factory function, sync or async, called without arguments, returning one.
 * Load-time problems (missing file, import failure, no export, bad shape, a factory that throws)
 * are thrown as AppError('ERR_CONFIG', 500) naming the path and the problem.
 *
 * Guaranteed for the returned authenticator: its `id` and every identity's `src` are
 * `custom:<module id>`, so a module cannot pose as `local` or another source; an identity has
 * non-empty `sub`/`username`, string `groups` without commas or control characters, and no reserved
 * claim in `extraClaims` (such claims are dropped); an unknown outcome, a malformed identity, a
 * thrown error or a call slower than `timeoutMs` (default 5000) becomes AppError('ERR_INTERNAL', 503)
 * with a generic message, the module's own error kept only as `cause` for the logs.
 * The optional `refresh(identity, ctx)` hook (renewal) gets the same treatment: it resolves to
 * `{kind: 'refused'}` or `{kind: 'success', identity}` with the session's `sub` and `username`;
 * anything else, a throw or a timeout is AppError('ERR_INTERNAL', 503).
 * Not checked: that the module spends the same time on unknown users as on wrong passwords, the
 * content of `extraClaims` values, or the size of the resulting token. A call that timed out is not
 * cancelled; the module keeps running it in the background.
 */
export async function loadCustomAuthenticator(modulePath: string, options: CustomAuthenticatorOptions = {}): Promise<PasswordAuthenticator> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CUSTOM_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw configError(modulePath, `timeout must be a positive whole number of ms, got ${timeoutMs}`);
  const absolute = path.resolve(modulePath);
  try {
    if (!(await stat(absolute)).isFile()) throw configError(modulePath, 'is not a file');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw configError(modulePath, 'file not found or not readable', err);
  }

  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (err) {
    throw configError(modulePath, `the module failed to load: ${err instanceof Error ? err.message : String(err)}`, err);
  }

  let exported = mod.default ?? mod.authenticator;
  if (exported === undefined) throw configError(modulePath, 'the module has neither a default export nor an export named `authenticator`');
  if (typeof exported === 'function') {
    try {
      exported = await (exported as () => unknown)();
    } catch (err) {
      throw configError(modulePath, `the factory function threw: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }
  const problem = shapeProblem(exported);
  if (problem !== null) throw configError(modulePath, problem);
  return wrap(exported as unknown as PasswordAuthenticator, timeoutMs);
}
