/**
 * The custom authentication module end to end: AUTH_CUSTOM_MODULE loads the shipped example, a user
 * known only to it signs in through the real nginx gate, and the upstream sees the identity with
 * src "custom:<id>". Local users still come first.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { REPO_ROOT } from '../../scripts/lib/nginx-runtime.js';
import { stackTest, startStack, type Stack } from '../support/stack.js';

const modulePath = join(REPO_ROOT, 'examples', 'custom-auth', 'static-users.mjs');

/** Writes the example module's users file (passwords hashed with its own hashPassword) and points it there. */
async function useCustomUsers(dir: string, users: Array<{ username: string; password: string; [field: string]: unknown }>): Promise<void> {
  const { hashPassword } = (await import(modulePath)) as { hashPassword: (pw: string) => string };
  const usersFile = join(dir, 'users.json');
  writeFileSync(usersFile, JSON.stringify(users.map(({ password, ...rest }) => ({ ...rest, passwordHash: hashPassword(password) }))));
  process.env.CUSTOM_AUTH_USERS_FILE = usersFile;
}

describe('custom authentication module (default chain: local, custom)', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-custom-'));
    await useCustomUsers(dir, [
      { username: 'ada', password: 'analytical engine 1843', name: 'Ada Lovelace', email: 'ada@example.test', groups: ['Engines'] },
      { username: 'kirk', password: 'custom kirk password', groups: ['Impostors'] },
    ]);
    stack = await startStack({ env: { AUTH_CUSTOM_MODULE: modulePath, PAYLOAD_GROUPS: '*' } });
    await stack.createUser('kirk', 'local kirk password', { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    delete process.env.CUSTOM_AUTH_USERS_FILE;
    rmSync(dir, { recursive: true, force: true });
  });

  test('a user known only to the module signs in and the upstream sees src custom:<id>', async () => {
    const { res, session } = await stack.login('ada', 'analytical engine 1843', '/reports');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/reports');
    stack.upstream.reset();
    const page = await stack.request('GET', '/reports', { accept: 'text/html', cookie: String(session) });
    expect(page.status).toBe(200);
    const h = stack.upstream.seen[0].headers;
    expect(h['x-payload-username']).toBe('ada');
    expect(h['x-payload-groups']).toBe('Engines');
    expect(h['x-payload-src']).toMatch(/^custom:[a-z0-9-]+$/);
  });

  test('a wrong password from the module is a generic 401', async () => {
    const { res, session } = await stack.login('ada', 'wrong', '/');
    expect(res.status).toBe(401);
    expect(res.body).toContain('Invalid username or password.');
    expect(session).toBeNull();
  });

  test('a local user shadows the module: the module password for that name does not work', async () => {
    const custom = await stack.login('kirk', 'custom kirk password', '/');
    expect(custom.res.status).toBe(401);
    const local = await stack.login('kirk', 'local kirk password', '/');
    expect(local.res.status).toBe(302);
  });
});

describe('AUTH_CHAIN=custom,local puts the module first', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-chain-'));
    await useCustomUsers(dir, [{ username: 'kirk', password: 'custom kirk password', groups: ['Impostors'] }]);
    stack = await startStack({ env: { AUTH_CUSTOM_MODULE: modulePath, AUTH_CHAIN: 'custom,local', PAYLOAD_GROUPS: '*' } });
    await stack.createUser('kirk', 'local kirk password', { groups: ['Federation'] });
    await stack.createUser('mccoy', 'local mccoy password');
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    delete process.env.CUSTOM_AUTH_USERS_FILE;
    rmSync(dir, { recursive: true, force: true });
  });

  test('the module decides for a name it knows; the local password for that name no longer works', async () => {
    expect((await stack.login('kirk', 'local kirk password', '/')).res.status).toBe(401);
    const { res, session } = await stack.login('kirk', 'custom kirk password', '/');
    expect(res.status).toBe(302);
    stack.upstream.reset();
    await stack.request('GET', '/', { accept: 'text/html', cookie: String(session) });
    expect(stack.upstream.seen[0].headers['x-payload-groups']).toBe('Impostors');
  });

  test('a name the module does not know falls through to the local store', async () => {
    expect((await stack.login('mccoy', 'local mccoy password', '/')).res.status).toBe(302);
  });
});
