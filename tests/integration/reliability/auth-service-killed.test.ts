/**
 * Issue 11 (1): the auth service killed with SIGKILL under steady signed-in load. The gate never calls
 * the service for a valid token, so not one signed-in request may fail; /login shows the branded
 * page while the service is gone, and sign-in works again once it restarts (nginx is not reloaded).
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { isAlive } from '../../../scripts/lib/nginx-runtime.js';
import { sleep, startLoad, untilAnswered } from '../../support/load.js';
import { stackTest, startStack, type Stack } from '../../support/stack.js';
import { waitUntil } from '../../support/wait.js';

describe('auth service killed under signed-in load', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'killed service test password 7';

  beforeAll(async () => {
    stack = await startStack({ authProcess: true });
    await stack.createUser('kirk', password, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('kill -9: 0 failed signed-in requests, /login shows the branded page, sign-in recovers on restart', async () => {
    const { session } = await stack.login('kirk', password, '/');
    expect(session).not.toBeNull();
    const load = startLoad({ port: stack.proxyPort, path: '/reports/q3', headers: { cookie: String(session), accept: 'text/html' }, connections: 4 });
    let stopped = false;
    try {
      await untilAnswered(load, 200);
      const pid = stack.authPid()!;
      await stack.killAuthService('SIGKILL');
      expect(isAlive(pid)).toBe(false);
      const before = load.total();

      // Down: the sign-in page is the gateway's branded 50x page, never a bare nginx error.
      const login = await stack.request('GET', '/login', { accept: 'text/html' });
      expect(login.status).toBe(502);
      expect(login.headers['content-type']).toMatch(/^text\/html/);
      expect(login.body).toMatch(/<title>[^<]*Identity Gateway<\/title>/);
      expect(login.body).not.toMatch(/<center>nginx/);
      await sleep(2000);
      expect(load.total()).toBeGreaterThan(before + 100);

      await stack.restartAuthService({});
      // No nginx reload: the next sign-in reaches the new process (nginx retries the upstream).
      expect(await waitUntil(async () => (await stack.request('GET', '/login', { accept: 'text/html' })).status === 200, 10_000)).toBe(true);
      const again = await stack.login('kirk', password, '/');
      expect(again.res.status).toBe(302);
      expect(again.session).not.toBeNull();
      await sleep(500);

      const result = await load.stop();
      stopped = true;
      // No reload here, so not even a resent request.
      expect({ failed: result.failed, retried: result.retried, errors: result.errors, samples: result.samples }).toEqual({ failed: 0, retried: 0, errors: {}, samples: [] });
      expect(result.statuses[200]).toBe(result.total);
      expect(result.total).toBeGreaterThan(500);
    } finally {
      if (!stopped) await load.stop();
    }
  }, 60_000);
});
