/**
 * A bounded, in-process load loop for the reliability tests: `connections` keep-alive clients send
 * the same request back to back until stop() is called, and every answer is counted by status. A
 * request that gets no HTTP answer at all (reset, refused, timeout) counts as a failure with its
 * error code. A GET whose connection is reset before any answer byte is sent again once, on a new
 * connection: HTTP lets a client retry an idempotent request after a connection failure (RFC 9110
 * §9.2.2, RFC 9112 §9.3.1), and browsers and HTTP libraries do for reused keep-alive connections.
 * A reloading nginx's old workers close every connection that is idle at that moment: keep-alive
 * ones the client had just written to, and (rarely, about once in 200,000 requests here) one they
 * had just accepted. Those retries are counted, never hidden. Not a benchmark: `make bench` measures throughput (wrk); this proves correctness.
 */
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';

export interface LoadResult {
  /** Answers by HTTP status. */
  statuses: Record<number, number>;
  /** Requests with no HTTP answer, by error code (ECONNRESET, ECONNREFUSED, timeout, ...). */
  errors: Record<string, number>;
  /** GETs sent again after their connection was reset before any answer. */
  retried: number;
  /** All requests whose answer was not `expectStatus` (errors included). */
  failed: number;
  total: number;
  /** A few of the unexpected answers (status and the start of the body), for the failure message. */
  samples: string[];
}

export interface LoadOptions {
  port: number;
  path: string | (() => string);
  headers: OutgoingHttpHeaders;
  connections?: number;
  /** What every answer must be (default 200). */
  expectStatus?: number;
  /** Per request; the loop counts a timeout as a failure (default 10 s). */
  timeoutMs?: number;
}

export interface RunningLoad {
  /** Answers so far (to wait until the load has really started). */
  total(): number;
  stop(): Promise<LoadResult>;
}

export function startLoad(opts: LoadOptions): RunningLoad {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections ?? 4 });
  const expectStatus = opts.expectStatus ?? 200;
  const result: LoadResult = { statuses: {}, errors: {}, retried: 0, failed: 0, total: 0, samples: [] };
  let running = true;

  const one = (path = typeof opts.path === 'function' ? opts.path() : opts.path, retry = true): Promise<void> =>
    new Promise((resolve) => {
      let answered = false;
      const req = request({ host: '127.0.0.1', port: opts.port, path, headers: opts.headers, agent: retry ? agent : false, timeout: opts.timeoutMs ?? 10_000 }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          result.total++;
          result.statuses[status] = (result.statuses[status] ?? 0) + 1;
          if (status !== expectStatus) {
            result.failed++;
            if (result.samples.length < 5) result.samples.push(`${status} ${path}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`);
          }
          resolve();
        });
        res.on('error', (err) => fail(err));
      });
      const fail = (err: Error & { code?: string }) => {
        if (retry && !answered && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          result.retried++;
          resolve(one(path, false));
          return;
        }
        result.total++;
        result.failed++;
        const code = `${err.code ?? err.message}${req.reusedSocket ? ' (reused connection)' : ''}${retry ? '' : ' (resent)'}`;
        result.errors[code] = (result.errors[code] ?? 0) + 1;
        if (result.samples.length < 5) result.samples.push(`${code} ${path}`);
        resolve();
      };
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', fail);
      req.end();
    });

  const loop = async (): Promise<void> => {
    while (running) await one();
  };
  const loops = Array.from({ length: opts.connections ?? 4 }, loop);

  return {
    total: () => result.total,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

/** Resolves once `load` has had at least `n` answers (fails after `timeoutMs`). */
export async function untilAnswered(load: RunningLoad, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (load.total() < n) {
    if (Date.now() > deadline) throw new Error(`the load got ${load.total()} answers in ${timeoutMs} ms, expected ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
