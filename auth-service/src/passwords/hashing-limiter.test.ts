import { describe, expect, test } from '@jest/globals';
import { AppError } from '../errors.js';
import { createHashingLimiter, HASHING_BUSY_MESSAGE, limitPasswordHashing } from './hashing-limiter.js';
import type { PasswordHasher } from './password-hasher.js';

/** Work the test finishes by hand: no timers, so the order of events is the only thing asserted. */
function gate<T>(value: T) {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = () => resolve(value);
    fail = reject;
  });
  return { promise, open, fail };
}

/** Lets every settled promise's continuations run. */
const flush = () => new Promise((r) => setImmediate(r));

describe('hashing limiter', () => {
  test('runs at most `concurrency` at once and starts waiters in arrival order', async () => {
    const limiter = createHashingLimiter({ concurrency: 2, queue: 10 });
    const started: number[] = [];
    const gates = [0, 1, 2, 3, 4].map((i) => gate(i));
    const results = gates.map((g, i) =>
      limiter.run(() => {
        started.push(i);
        return g.promise;
      }),
    );
    await flush();
    expect(started).toEqual([0, 1]);
    expect(limiter.load()).toEqual({ running: 2, waiting: 3 });

    gates[1]!.open();
    await flush();
    expect(started).toEqual([0, 1, 2]);
    expect(limiter.load()).toEqual({ running: 2, waiting: 2 });

    for (const g of gates) g.open();
    await expect(Promise.all(results)).resolves.toEqual([0, 1, 2, 3, 4]);
    expect(limiter.load()).toEqual({ running: 0, waiting: 0 });
  });

  test('refuses beyond the queue at once with a 503 that says when to retry, without running the work', async () => {
    const limiter = createHashingLimiter({ concurrency: 1, queue: 1 });
    const first = gate('a');
    const second = gate('b');
    let thirdRan = false;
    const a = limiter.run(() => first.promise);
    const b = limiter.run(() => second.promise);
    const c = limiter.run(async () => {
      thirdRan = true;
      return 'c';
    });
    const refused = await c.catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'ERR_LOGIN_BUSY', status: 503, safeMessage: HASHING_BUSY_MESSAGE, retryAfterSeconds: 2 });
    expect(thirdRan).toBe(false);
    first.open();
    second.open();
    await expect(Promise.all([a, b])).resolves.toEqual(['a', 'b']);
  });

  test('a queue of 0 refuses everything beyond the running slots', async () => {
    const limiter = createHashingLimiter({ concurrency: 1, queue: 0 });
    const first = gate(1);
    const a = limiter.run(() => first.promise);
    await expect(limiter.run(async () => 2)).rejects.toMatchObject({ code: 'ERR_LOGIN_BUSY' });
    first.open();
    await expect(a).resolves.toBe(1);
    // The slot is free again.
    await expect(limiter.run(async () => 3)).resolves.toBe(3);
  });

  test('a failing computation releases its slot (a throwing hash cannot leak capacity)', async () => {
    const limiter = createHashingLimiter({ concurrency: 1, queue: 0 });
    await expect(limiter.run(() => Promise.reject(new Error('argon2 out of memory')))).rejects.toThrow('argon2 out of memory');
    expect(limiter.load()).toEqual({ running: 0, waiting: 0 });
    await expect(limiter.run(async () => 'ok')).resolves.toBe('ok');
  });

  test('a newcomer cannot overtake the queue when a slot frees', async () => {
    const limiter = createHashingLimiter({ concurrency: 1, queue: 5 });
    const order: string[] = [];
    const first = gate(undefined);
    const a = limiter.run(() => first.promise.then(() => void order.push('first')));
    const b = limiter.run(async () => void order.push('queued'));
    first.open();
    // Arrives in the same tick as the release: it must wait behind `b`.
    const c = limiter.run(async () => void order.push('newcomer'));
    await Promise.all([a, b, c]);
    expect(order).toEqual(['first', 'queued', 'newcomer']);
  });

  test.each([
    [{ concurrency: 0, queue: 1 }, /concurrency/],
    [{ concurrency: 1.5, queue: 1 }, /concurrency/],
    [{ concurrency: 1, queue: -1 }, /queue/],
  ])('rejects invalid limits %j', (limits, message) => {
    expect(() => createHashingLimiter(limits)).toThrow(message);
  });

  test('limitPasswordHashing sends every computation through the limiter, and needsRehash around it', async () => {
    const calls: string[] = [];
    const held = gate(true);
    const hasher: PasswordHasher = {
      hash: async () => (calls.push('hash'), 'h'),
      verify: () => (calls.push('verify'), held.promise),
      needsRehash: () => (calls.push('needsRehash'), false),
      verifyDummy: async () => void calls.push('verifyDummy'),
      verifyAtDummyCost: async () => (calls.push('verifyAtDummyCost'), true),
    };
    const limited = limitPasswordHashing(hasher, createHashingLimiter({ concurrency: 1, queue: 0 }));
    const v = limited.verify('pw', 'stored');
    await expect(limited.hash('pw')).rejects.toMatchObject({ code: 'ERR_LOGIN_BUSY' });
    await expect(limited.verifyDummy('pw')).rejects.toMatchObject({ code: 'ERR_LOGIN_BUSY' });
    await expect(limited.verifyAtDummyCost('pw', 'stored')).rejects.toMatchObject({ code: 'ERR_LOGIN_BUSY' });
    expect(limited.needsRehash('stored')).toBe(false);
    held.open();
    await expect(v).resolves.toBe(true);
    await limited.verifyDummy('pw');
    expect(calls).toEqual(['verify', 'needsRehash', 'verifyDummy']);
  });
});
