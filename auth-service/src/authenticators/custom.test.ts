import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors.js';
import { CUSTOM_UNAVAILABLE_MESSAGE, loadCustomAuthenticator } from './custom.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLE_MODULE = path.resolve(here, '../../../examples/custom-auth/static-users.mjs');
const CTX = { requestId: 'r1' };

let dir: string;
let moduleCount = 0;

/** Writes `source` as a fresh ES module in the temp dir (a new name each time: imports are cached). */
function writeModule(source: string): string {
  moduleCount += 1;
  const file = path.join(dir, `module-${moduleCount}.mjs`);
  writeFileSync(file, source);
  return file;
}

/** A module whose authenticator returns `outcome` (a JS expression) for every call. */
function moduleReturning(outcome: string): string {
  return writeModule(`export default { id: 'acme', async authenticate() { return ${outcome}; } };`);
}

async function loadError(modulePath: string): Promise<AppError> {
  const err = await loadCustomAuthenticator(modulePath).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

async function callError(modulePath: string, timeoutMs?: number): Promise<AppError> {
  const auth = await loadCustomAuthenticator(modulePath, { timeoutMs });
  const err = await auth.authenticate({ username: 'ada', password: 'pw' }, CTX).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'custom-auth-'));
  // The example module's own hash function writes the users file, as the README tells operators to.
  const { hashPassword } = (await import(EXAMPLE_MODULE)) as { hashPassword: (pw: string) => string };
  const usersFile = path.join(dir, 'users.json');
  writeFileSync(
    usersFile,
    JSON.stringify([
      { username: 'Ada', passwordHash: hashPassword('ada test pw'), name: 'Ada L', email: 'ada@example.test', groups: ['ops'] },
      { username: 'bob', passwordHash: hashPassword('bob test pw'), groups: [], disabled: true },
    ]),
  );
  process.env.CUSTOM_AUTH_USERS_FILE = usersFile;
});

afterAll(() => {
  delete process.env.CUSTOM_AUTH_USERS_FILE;
  rmSync(dir, { recursive: true, force: true });
});

describe('the example static-users module', () => {
  test.each([
    ['right password', 'Ada', 'ada test pw', 'success'],
    ['username in another case', 'ada', 'ada test pw', 'success'],
    ['wrong password', 'Ada', 'nope', 'invalid'],
    ['unknown user', 'nobody', 'nope', 'not-found'],
    ['disabled user, right password', 'bob', 'bob test pw', 'disabled'],
    ['disabled user, wrong password', 'bob', 'nope', 'invalid'],
  ])('%s', async (_name, username, password, kind) => {
    const auth = await loadCustomAuthenticator(EXAMPLE_MODULE);
    expect((await auth.authenticate({ username, password }, CTX)).kind).toBe(kind);
  });

  test('returns the stored identity with src custom:static-users', async () => {
    const auth = await loadCustomAuthenticator(EXAMPLE_MODULE);
    expect(auth.id).toBe('custom:static-users');
    expect(await auth.authenticate({ username: 'ADA', password: 'ada test pw' }, CTX)).toEqual({
      kind: 'success',
      identity: { sub: 'ada', username: 'Ada', name: 'Ada L', email: 'ada@example.test', groups: ['ops'], src: 'custom:static-users' },
    });
  });
});

describe('loading a module', () => {
  const ok = `{ id: 'acme', async authenticate() { return { kind: 'invalid' }; } }`;
  test.each([
    ['a default export object', `export default ${ok};`],
    ['a named export `authenticator`', `export const authenticator = ${ok};`],
    ['a factory function', `export default function create() { return ${ok}; }`],
    ['an async factory function', `export default async function create() { await null; return ${ok}; }`],
    ['a synchronous authenticate (result still awaited)', `export default { id: 'acme', authenticate() { return { kind: 'invalid' }; } };`],
  ])('accepts a module with %s', async (_name, source) => {
    const auth = await loadCustomAuthenticator(writeModule(source));
    expect(auth.id).toBe('custom:acme');
    expect(await auth.authenticate({ username: 'ada', password: 'pw' }, CTX)).toEqual({ kind: 'invalid' });
  });

  test.each([
    ['a module without any usable export', `export const something = 1;`, /neither a default export nor an export named `authenticator`/],
    ['an export that is not an object', `export default 42;`, /must be an authenticator object, got a number/],
    ['a factory returning nothing', `export default () => undefined;`, /must be an authenticator object, got undefined/],
    ['a factory that throws', `export default () => { throw new Error('no db'); };`, /factory function threw: no db/],
    ['an authenticator without authenticate', `export default { id: 'acme' };`, /no `authenticate` function/],
    ['an authenticate that is not a function', `export default { id: 'acme', authenticate: true };`, /no `authenticate` function/],
    ['a missing id', `export default { async authenticate() {} };`, /`id` must be/],
    ['an id with upper case and spaces', `export default { id: 'Acme Corp', async authenticate() {} };`, /`id` must be/],
    ['an id longer than 32 characters', `export default { id: '${'a'.repeat(33)}', async authenticate() {} };`, /`id` must be/],
    ['a module with a syntax error', `export default {`, /failed to load/],
  ])('rejects %s with ERR_CONFIG naming the path', async (_name, source, problem) => {
    const file = writeModule(source);
    const err = await loadError(file);
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.status).toBe(500);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(problem);
  });

  test('rejects a missing file with ERR_CONFIG naming the path', async () => {
    const file = path.join(dir, 'does-not-exist.mjs');
    const err = await loadError(file);
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/file not found/);
  });
});

describe('calling a loaded module', () => {
  test.each([
    ['throws (its text is not shown to the user)', `export default { id: 'acme', async authenticate() { throw new Error('db password is hunter2'); } };`],
    ['throws synchronously', `export default { id: 'acme', authenticate() { throw new Error('db password is hunter2'); } };`],
    ['returns an unknown kind', `export default { id: 'acme', async authenticate() { return { kind: 'maybe' }; } };`],
    ['returns nothing', `export default { id: 'acme', async authenticate() {} };`],
  ])('turns a module that %s into a 503 with a generic message', async (_name, source) => {
    const err = await callError(writeModule(source));
    expect(err.code).toBe('ERR_INTERNAL');
    expect(err.status).toBe(503);
    expect(err.safeMessage).toBe(CUSTOM_UNAVAILABLE_MESSAGE);
    expect(err.message).not.toMatch(/hunter2/);
  });

  test('turns a call that never settles into a 503 after the timeout', async () => {
    const file = writeModule(`export default { id: 'acme', authenticate() { return new Promise(() => {}); } };`);
    const started = Date.now();
    const err = await callError(file, 50);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.status).toBe(503);
    expect(err.safeMessage).toBe(CUSTOM_UNAVAILABLE_MESSAGE);
    expect(String((err.cause as Error).message)).toMatch(/longer than 50 ms/);
  });

  const valid = `sub: 'u1', username: 'ada', groups: ['ops']`;
  test.each([
    ['identity missing', `{ kind: 'success' }`],
    ['empty sub', `{ kind: 'success', identity: { sub: '', username: 'ada', groups: [] } }`],
    ['numeric sub', `{ kind: 'success', identity: { sub: 7, username: 'ada', groups: [] } }`],
    ['missing username', `{ kind: 'success', identity: { sub: 'u1', groups: [] } }`],
    ['username with a newline (log injection)', `{ kind: 'success', identity: { sub: 'u1', username: 'ada\\nadmin', groups: [] } }`],
    ['groups not an array', `{ kind: 'success', identity: { sub: 'u1', username: 'ada', groups: 'ops' } }`],
    ['group that is not a string', `{ kind: 'success', identity: { sub: 'u1', username: 'ada', groups: [1] } }`],
    ['group with a comma (forges a second group in the header)', `{ kind: 'success', identity: { sub: 'u1', username: 'ada', groups: ['ops,admin'] } }`],
    ['group with a control character', `{ kind: 'success', identity: { sub: 'u1', username: 'ada', groups: ['ops\\r\\nX-Evil: 1'] } }`],
    ['name that is not a string', `{ kind: 'success', identity: { ${valid}, name: 5 } }`],
    ['extraClaims that is an array', `{ kind: 'success', identity: { ${valid}, extraClaims: ['a'] } }`],
  ])('treats a malformed identity (%s) as a 503', async (_name, outcome) => {
    const err = await callError(moduleReturning(outcome));
    expect(err.status).toBe(503);
    expect(err.safeMessage).toBe(CUSTOM_UNAVAILABLE_MESSAGE);
  });

  test('forces src to custom:<id>, so a module cannot pose as local', async () => {
    const auth = await loadCustomAuthenticator(moduleReturning(`{ kind: 'success', identity: { ${valid}, src: 'local' } }`));
    const outcome = await auth.authenticate({ username: 'ada', password: 'pw' }, CTX);
    expect(outcome).toEqual({ kind: 'success', identity: { sub: 'u1', username: 'ada', groups: ['ops'], src: 'custom:acme' } });
  });

  test('drops reserved claims from extraClaims and keeps the others', async () => {
    const extra = `{ src: 'local', sub: 'root', groups: ['admin'], exp: 9999999999, iss: 'x', aud: 'y', sid: 's', department: 'R&D', level: 3 }`;
    const auth = await loadCustomAuthenticator(moduleReturning(`{ kind: 'success', identity: { ${valid}, extraClaims: ${extra} } }`));
    const outcome = await auth.authenticate({ username: 'ada', password: 'pw' }, CTX);
    expect(outcome).toEqual({
      kind: 'success',
      identity: { sub: 'u1', username: 'ada', groups: ['ops'], src: 'custom:acme', extraClaims: { department: 'R&D', level: 3 } },
    });
  });

  test('passes the failure kinds through unchanged and drops anything else on them', async () => {
    for (const kind of ['not-found', 'invalid', 'disabled']) {
      const auth = await loadCustomAuthenticator(moduleReturning(`{ kind: '${kind}', identity: { sub: 'x' } }`));
      expect(await auth.authenticate({ username: 'ada', password: 'pw' }, CTX)).toEqual({ kind });
    }
  });
});

describe('the optional refresh hook (renewal)', () => {
  const SESSION = { sub: 'u1', username: 'ada', groups: ['ops'], src: 'custom:acme' };

  /** A module whose `refresh` body is `body` (it sees `identity`). */
  function moduleRefreshing(body: string): string {
    return writeModule(`export default { id: 'acme', async authenticate() { return { kind: 'invalid' }; }, async refresh(identity) { ${body} } };`);
  }

  async function refreshError(modulePath: string, timeoutMs?: number): Promise<AppError> {
    const auth = await loadCustomAuthenticator(modulePath, { timeoutMs });
    const err = await auth.refresh!({ ...SESSION }, CTX).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }

  test('a module without the hook has none (renewal keeps the stored groups)', async () => {
    const auth = await loadCustomAuthenticator(moduleReturning(`{ kind: 'invalid' }`));
    expect(auth.refresh).toBeUndefined();
  });

  test('a `refresh` that is not a function is refused at load', async () => {
    const err = await loadError(writeModule(`export default { id: 'acme', async authenticate() {}, refresh: true };`));
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.message).toMatch(/`refresh` must be a function/);
  });

  test('accepts: the identity comes back checked, with the new groups and src forced', async () => {
    const auth = await loadCustomAuthenticator(moduleRefreshing(`return { kind: 'success', identity: { ...identity, groups: ['ops', 'audit'], src: 'local' } };`));
    expect(await auth.refresh!({ ...SESSION }, CTX)).toEqual({ kind: 'success', identity: { ...SESSION, groups: ['ops', 'audit'] } });
  });

  test('refuses: { kind: "refused" } passes through', async () => {
    const auth = await loadCustomAuthenticator(moduleRefreshing(`return { kind: 'refused' };`));
    expect(await auth.refresh!({ ...SESSION }, CTX)).toEqual({ kind: 'refused' });
  });

  test('cannot change the caller\'s identity in place', async () => {
    const auth = await loadCustomAuthenticator(moduleRefreshing(`identity.groups.push('admin'); return { kind: 'refused' };`));
    const session = { ...SESSION, groups: ['ops'] };
    await auth.refresh!(session, CTX);
    expect(session.groups).toEqual(['ops']);
  });

  test.each([
    ['throws', `throw new Error('directory down');`],
    ['answers an unknown kind', `return { kind: 'disabled' };`],
    ['answers another account (other sub)', `return { kind: 'success', identity: { ...identity, sub: 'root' } };`],
    ['answers another username', `return { kind: 'success', identity: { ...identity, username: 'admin' } };`],
    ['answers a group with a comma', `return { kind: 'success', identity: { ...identity, groups: ['ops,admin'] } };`],
  ])('a hook that %s is a 503 with the generic message (renewal: idp-unavailable, session kept)', async (_name, body) => {
    const err = await refreshError(moduleRefreshing(body));
    expect(err.status).toBe(503);
    expect(err.safeMessage).toBe(CUSTOM_UNAVAILABLE_MESSAGE);
  });

  test('a hook that never settles is a 503 after the timeout', async () => {
    const started = Date.now();
    const err = await refreshError(moduleRefreshing(`return new Promise(() => {});`), 50);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(String((err.cause as Error).message)).toMatch(/refresh\(\) took longer than 50 ms/);
  });
});
