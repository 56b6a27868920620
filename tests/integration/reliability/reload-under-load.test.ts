/**
 * Issue 11 (3): `make reload` five times during about 20 s of signed-in load gives 0 failed
 * requests. The real target runs (make -> scripts/reload.ts -> nginx -t, SIGHUP, wait for new
 * workers) against the stack's nginx, whose prefix is named as `make up` names it. The client
 * resends a GET whose connection an old worker closed before answering (tests/support/load.ts;
 * HTTP allows it for idempotent requests); a request that got any answer other than 200, or no
 * answer twice, fails the test.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { REPO_ROOT } from '../../../scripts/lib/nginx-runtime.js';
import { sleep, startLoad, untilAnswered } from '../../support/load.js';
import { stackTest, startStack, type Stack } from '../../support/stack.js';

const RELOADS = 5;
const SPACING_MS = 4000;

/** `make reload` for the stack's nginx, asynchronously (the load and the echo upstream run in this process). */
function makeReload(stack: Stack): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('make', ['--no-print-directory', 'reload'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATA_DIR: dirname(stack.nginx.prefix), PROXY_PORT: String(stack.proxyPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('reload under load', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'reload under load password 5';

  beforeAll(async () => {
    stack = await startStack();
    await stack.createUser('kirk', password, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test(`make reload ${RELOADS} times during ~20 s of signed-in load: 0 failed requests`, async () => {
    const { session } = await stack.login('kirk', password, '/');
    expect(session).not.toBeNull();
    // Half the requests to a fresh path (logged, proxied), half keeping their keep-alive connection
    // across the reloads: old workers must finish them, new ones take the next.
    let n = 0;
    const load = startLoad({ port: stack.proxyPort, path: () => `/dashboards/${n++ % 50}`, headers: { cookie: String(session), accept: 'text/html' }, connections: 6 });
    let stopped = false;
    try {
      await untilAnswered(load, 100);
      const started = Date.now();
      const outcomes: Array<{ code: number | null; output: string }> = [];
      for (let i = 0; i < RELOADS; i++) {
        const next = started + (i + 1) * SPACING_MS;
        outcomes.push(await makeReload(stack));
        await sleep(Math.max(0, next - Date.now()));
      }
      const result = await load.stop();
      stopped = true;
      for (const o of outcomes) expect(o).toEqual({ code: 0, output: expect.stringMatching(/reloaded: new workers/) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(RELOADS * SPACING_MS);
      expect({ failed: result.failed, errors: result.errors, samples: result.samples }).toEqual({ failed: 0, errors: {}, samples: [] });
      expect(result.total).toBeGreaterThan(1000);
      // What a browser would have retried by itself; printed so a change in it shows.
      console.log(`reload under load: ${result.total} requests, ${result.retried} resent after a connection reset, 0 failed`);
      expect(stack.nginx.errorLog()).not.toMatch(/exited on signal|\[emerg\]|\[alert\]/);
    } finally {
      if (!stopped) await load.stop();
    }
  }, 90_000);
});
