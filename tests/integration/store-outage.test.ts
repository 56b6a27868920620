/**
 * The user store going down and coming back: sessions keep working (the gate never touches the
 * store), login answers 503 with a clear page, and login recovers by itself.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { stackTest, startStack, type Stack } from '../support/stack.js';

describe('store outage', () => {
  let stack: Stack;
  const test = stackTest(() => stack);
  const password = 'outage test password 42';

  beforeAll(async () => {
    stack = await startStack({ cuttableStore: true });
    await stack.createUser('kirk', password, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('logged-in users keep working, login says 503, and login recovers when the store returns', async () => {
    const { session } = await stack.login('kirk', password, '/');
    expect(session).not.toBeNull();

    await stack.dbRelay!.cut();

    const page = await stack.request('GET', '/federation', { accept: 'text/html', cookie: String(session) });
    expect(page.status).toBe(200);
    expect(stack.upstream.seen.at(-1)?.headers['x-payload-username']).toBe('kirk');

    const down = await stack.login('kirk', password, '/');
    expect(down.res.status).toBe(503);
    expect(down.res.body).toMatch(/temporarily unavailable/i);
    expect(down.session).toBeNull();

    await stack.dbRelay!.restore();
    let recovered: Awaited<ReturnType<Stack['login']>> | null = null;
    for (let i = 0; i < 20; i++) {
      recovered = await stack.login('kirk', password, '/');
      if (recovered.res.status === 302) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(recovered?.res.status).toBe(302);
    expect(recovered?.session).not.toBeNull();
  }, 60_000);
});
