import { afterEach, describe, expect, test } from '@jest/globals';
import { pbkdf2Sync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { startHashingThreads, type HashingThreads } from './hashing-threads.js';

/** The nice value of each of this process's threads (Linux /proc; field 19 of stat). */
function threadNiceValues(): number[] {
  const values: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      values.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return values;
}

describe('hashing threads', () => {
  let threads: HashingThreads | undefined;
  afterEach(async () => {
    await threads?.close();
    threads = undefined;
  });

  test('compute exactly what Node computes in-process, for several requests at once', async () => {
    threads = startHashingThreads({ threads: 2, nice: 0 });
    const salts = [Buffer.alloc(16, 1), Buffer.alloc(16, 2), Buffer.alloc(16, 3), Buffer.alloc(16, 4), Buffer.alloc(16, 5)];
    const keys = await Promise.all(salts.map((salt, i) => threads!.pbkdf2(`pässword ${i}`, salt, 1000, 64, 'sha512')));
    keys.forEach((key, i) => expect(key.equals(pbkdf2Sync(`pässword ${i}`, salts[i]!, 1000, 64, 'sha512'))).toBe(true));
  });

  test('a bad request rejects with the reason and the thread keeps serving', async () => {
    threads = startHashingThreads({ threads: 1, nice: 0 });
    await expect(threads.pbkdf2('x', Buffer.alloc(16), 1000, 64, 'no-such-digest' as 'sha512')).rejects.toThrow(/pbkdf2 failed: .*digest/i);
    await expect(threads.pbkdf2('x', Buffer.alloc(16), 1000, 64, 'sha512')).resolves.toHaveLength(64);
  });

  test('after close, pending and new computations reject instead of hanging', async () => {
    threads = startHashingThreads({ threads: 1, nice: 0 });
    const pending = threads.pbkdf2('x', Buffer.alloc(16), 2_000_000, 64, 'sha512').catch((err: unknown) => err);
    await threads.close();
    expect(await pending).toEqual(new Error('hashing threads are closed'));
    await expect(threads.pbkdf2('x', Buffer.alloc(16), 1000, 64, 'sha512')).rejects.toThrow(/closed/);
  });

  (existsSync('/proc/self/task') ? test : test.skip)('run at the requested CPU priority, leaving every other thread as it was', async () => {
    const before = threadNiceValues();
    expect(before.filter((n) => n === 13)).toEqual([]);
    threads = startHashingThreads({ threads: 2, nice: 13 });
    // Both threads have started once each has answered.
    await Promise.all([threads.pbkdf2('a', Buffer.alloc(16), 200_000, 64, 'sha512'), threads.pbkdf2('b', Buffer.alloc(16), 200_000, 64, 'sha512')]);
    const after = threadNiceValues();
    expect(after.filter((n) => n === 13)).toHaveLength(2);
    expect(after.filter((n) => n !== 13).every((n) => n === before[0])).toBe(true);
  });
});
