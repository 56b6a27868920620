import { Worker } from 'node:worker_threads';
import type { Pbkdf2 } from './password-hasher.js';

/**
 * The worker's code (CommonJS, evaluated: no file to resolve under tsx or a bundle). It lowers its
 * own thread's CPU priority (on Linux setpriority(0) applies to the calling thread only; elsewhere
 * the call may fail, and the thread then keeps the normal priority), then computes PBKDF2
 * synchronously on that thread, one request at a time.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pbkdf2Sync } = require('node:crypto');
try { if (workerData.nice > 0) require('node:os').setPriority(0, workerData.nice); } catch {}
parentPort.on('message', (m) => {
  try {
    const key = pbkdf2Sync(m.password, Buffer.from(m.salt), m.iterations, m.keyLength, m.digest);
    parentPort.postMessage({ id: m.id, key });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message) });
  }
});
`;

export interface HashingThreads {
  /** PBKDF2 on one of the threads (the next idle one, else in arrival order when one frees). */
  pbkdf2: Pbkdf2;
  /** Stops the threads; pending computations reject. */
  close(): Promise<void>;
}

interface Job {
  id: number;
  message: { id: number; password: string; salt: Uint8Array; iterations: number; keyLength: number; digest: string };
  resolve: (key: Buffer) => void;
  reject: (err: Error) => void;
}

/**
 * `threads` worker threads for password hashing at CPU priority `nice` (0-19; LOGIN_HASH_NICE). Under
 * CPU contention the kernel then gives nginx and the signed-in traffic the CPU first, and a sign-in
 * storm waits (and overflows LOGIN_HASH_QUEUE into 503s) instead of slowing everyone; an idle machine
 * hashes at full speed, as nice only matters when something else wants the CPU.
 * Guaranteed: at most `threads` computations at once. Not covered: argon2id (its binding computes on
 * libuv's thread pool at normal priority; the hashing limiter still bounds it).
 * The threads are unref'd: they never keep the process alive on their own.
 */
export function startHashingThreads(opts: { threads: number; nice: number }): HashingThreads {
  const idle: Worker[] = [];
  const busy = new Map<Worker, Job>();
  const waiting: Job[] = [];
  let nextId = 0;
  let closed = false;

  const dispatch = (): void => {
    while (idle.length > 0 && waiting.length > 0) {
      const worker = idle.pop()!;
      const job = waiting.shift()!;
      busy.set(worker, job);
      worker.postMessage(job.message);
    }
  };

  const workers = Array.from({ length: opts.threads }, () => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { nice: opts.nice } });
    worker.unref();
    worker.on('message', (m: { id: number; key?: Uint8Array; error?: string }) => {
      const job = busy.get(worker);
      busy.delete(worker);
      idle.push(worker);
      if (job !== undefined && job.id === m.id) {
        if (m.key !== undefined) job.resolve(Buffer.from(m.key.buffer, m.key.byteOffset, m.key.byteLength));
        else job.reject(new Error(`pbkdf2 failed: ${m.error}`));
      }
      dispatch();
    });
    worker.on('error', (err) => {
      busy.get(worker)?.reject(err);
      busy.delete(worker);
    });
    idle.push(worker);
    return worker;
  });

  return {
    pbkdf2(password, salt, iterations, keyLength, digest) {
      if (closed) return Promise.reject(new Error('hashing threads are closed'));
      return new Promise<Buffer>((resolve, reject) => {
        const id = nextId++;
        waiting.push({ id, message: { id, password, salt: new Uint8Array(salt), iterations, keyLength, digest }, resolve, reject });
        dispatch();
      });
    },
    async close() {
      closed = true;
      const pending = [...waiting, ...busy.values()];
      waiting.length = 0;
      busy.clear();
      for (const job of pending) job.reject(new Error('hashing threads are closed'));
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
