import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { startTcpProxy, type TcpProxy } from '../../tests/support/tcp-proxy.js';
import type { AppDeps } from './app.js';
import { FAST_POLICY, openTestDatabase, startTestApp, storageFor, type TestApp, type TestDatabase } from './app.testkit.js';
import { createPasswordHasher } from './passwords/index.js';
import { parseStoredHash } from './passwords/hash-formats.js';
import { createPool } from './storage/db.js';
import { createUsersRepo, type UsersRepo } from './storage/users-repo.js';
import { createAuditRepo } from './storage/audit-repo.js';
import { createSessionsRepo } from './storage/sessions-repo.js';

let db: TestDatabase;
const open: TestApp[] = [];
const pools: Array<{ end(): Promise<void> }> = [];

beforeAll(async () => {
  db = await openTestDatabase();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db?.close();
});

async function start(opts: Parameters<typeof startTestApp>[0]): Promise<TestApp> {
  const app = await startTestApp(opts);
  open.push(app);
  return app;
}

/** A port nothing listens on: bound once to get a number, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function repoAt(url: string): { repo: UsersRepo; storage: NonNullable<AppDeps['storage']>; ping: () => Promise<void> } {
  const pool = createPool(url, { connectionTimeoutMillis: 1000, logger: { warn: () => undefined } });
  pools.push(pool);
  return {
    repo: createUsersRepo(pool),
    storage: { sessions: createSessionsRepo(pool), audit: createAuditRepo(pool) },
    ping: async () => void (await pool.query('SELECT 1')),
  };
}

describe('user store unavailable', () => {
  test('answers 503 "temporarily unavailable" and logs auth_error when the database cannot be reached', async () => {
    const { repo, ping } = repoAt(`postgres://postgres@127.0.0.1:${await closedPort()}/nothing`);
    const app = await start({ usersRepo: repo, deps: { pingStore: ping } });
    const form = await app.loginForm('/dash');
    expect(form.page.status).toBe(200);
    const res = await app.login('alice', 'whatever', { rd: '/dash', headers: { 'x-request-id': 'store-down-1' } });
    expect(res.status).toBe(503);
    expect(res.body).toContain('Sign-in is temporarily unavailable');
    expect(res.body).toContain('<a href="/login?rd=%2Fdash">Back to sign-in</a>');
    expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    expect(app.events('auth_error')).toContainEqual(
      expect.objectContaining({ user: 'alice', src: 'local', reason: 'store-unavailable', request_id: 'store-down-1' }),
    );
    expect(JSON.parse((await app.request('GET', '/healthz')).body)).toEqual({ status: 'ok' });
    const ready = await app.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'not-ready', checks: { config: 'ok', database: 'unavailable' } });
  });

  test('answers 503 without touching the store while start-up migrations have not succeeded', async () => {
    let lookups = 0;
    const counting: UsersRepo = {
      ...db.repo,
      findByUsername: (u) => {
        lookups += 1;
        return db.repo.findByUsername(u);
      },
    };
    const app = await start({ usersRepo: counting, deps: { storeReady: () => false } });
    expect((await app.login('alice', 'x')).status).toBe(503);
    expect(lookups).toBe(0);
    expect(app.events('auth_error')).toContainEqual(expect.objectContaining({ reason: 'store-not-ready' }));
    expect((await app.request('GET', '/healthz')).status).toBe(200);
    const ready = await app.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'not-ready', checks: { config: 'ok', database: 'migrations-pending' } });
  });

  test('recovers by itself when the database comes back', async () => {
    await db.createUser('dora', 'doras password');
    const target = new URL(db.db.url);
    const relay: TcpProxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    try {
      target.port = String(relay.port);
      const { repo, storage } = repoAt(target.toString());
      const app = await start({ usersRepo: repo, deps: { storage } });
      expect((await app.login('dora', 'doras password')).status).toBe(302);
      await relay.cut();
      expect((await app.login('dora', 'doras password')).status).toBe(503);
      await relay.restore();
      expect((await app.login('dora', 'doras password')).status).toBe(302);
    } finally {
      await relay.close();
    }
  });
});

describe('password rehash on sign-in', () => {
  test('rewrites a PBKDF2 hash with the new iteration count after the policy changed', async () => {
    await db.createUser('erin', 'erins password');
    const app = await start({ usersRepo: db.repo, hasher: createPasswordHasher({ ...FAST_POLICY, pbkdf2Iterations: 2000 }) });
    expect((await app.login('erin', 'erins password')).status).toBe(302);
    const stored = (await db.repo.findByUsername('erin'))!.passwordHash;
    expect(parseStoredHash(stored)).toMatchObject({ kind: 'pbkdf2-sha512', iterations: 2000 });
    expect(app.events('password_rehashed')).toContainEqual(expect.objectContaining({ user: 'erin', src: 'local' }));
    // The new hash works, and is not rewritten again.
    expect((await app.login('erin', 'erins password')).status).toBe(302);
    expect((await db.repo.findByUsername('erin'))!.passwordHash).toBe(stored);
  });

  test('switches a PBKDF2 hash to argon2id when the policy says argon2id', async () => {
    await db.createUser('frank', 'franks password');
    const argon = createPasswordHasher({ ...FAST_POLICY, algorithm: 'argon2id', argon2: { memoryCost: 4096, timeCost: 2, parallelism: 1 } });
    const app = await start({ usersRepo: db.repo, hasher: argon });
    expect((await app.login('frank', 'franks password')).status).toBe(302);
    const stored = (await db.repo.findByUsername('frank'))!.passwordHash;
    expect(parseStoredHash(stored)).toMatchObject({ kind: 'argon2id', memoryCost: 4096, timeCost: 2, parallelism: 1 });
    expect((await app.login('frank', 'franks password')).status).toBe(302);
    expect((await app.login('frank', 'wrong')).status).toBe(401);
  });

  test('leaves the hash alone after a wrong password', async () => {
    const user = await db.createUser('gina', 'ginas password');
    const app = await start({ usersRepo: db.repo, hasher: createPasswordHasher({ ...FAST_POLICY, pbkdf2Iterations: 2000 }) });
    expect((await app.login('gina', 'nope')).status).toBe(401);
    expect((await db.repo.findByUsername('gina'))!.passwordHash).toBe(user.passwordHash);
  });

  test('still signs the user in when the rehash cannot be stored, and logs it', async () => {
    await db.createUser('hank', 'hanks password');
    const failing: UsersRepo = {
      ...db.repo,
      updatePasswordHash: async () => {
        throw new Error('disk full');
      },
    };
    const app = await start({ usersRepo: failing, deps: { storage: storageFor(db.repo) }, hasher: createPasswordHasher({ ...FAST_POLICY, pbkdf2Iterations: 2000 }) });
    expect((await app.login('hank', 'hanks password')).status).toBe(302);
    expect(app.events('password_rehash_failed')).toContainEqual(expect.objectContaining({ user: 'hank', err: expect.objectContaining({ message: 'disk full' }) }));
  });
});
