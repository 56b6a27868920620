/**
 * Issue 11 (7): slowloris-style clients do not starve signed-in users. 200 connections to the real
 * nginx config: 100 trickle their request header a byte per second, 50 send half a header and stop,
 * 50 send a sign-in POST's header and a sliver of its body, then stop. Meanwhile signed-in traffic
 * has 0 failed requests, and nginx drops every slow connection within its timeouts
 * (nginx/nginx.conf: client_header_timeout 10s for the whole header, however it trickles;
 * client_body_timeout 10s between two body reads), without answering any of them with a 5xx.
 */
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { connect, type Socket } from 'node:net';
import { startLoad, untilAnswered } from '../../support/load.js';
import { stackTest, startStack, type Stack } from '../../support/stack.js';
import { waitUntil } from '../../support/wait.js';

const PASSWORD = 'slow clients password 200';
/** nginx/nginx.conf's client_header_timeout and client_body_timeout, in seconds. */
const HEADER_TIMEOUT_S = 10;
const BODY_TIMEOUT_S = 10;

interface Slow {
  kind: 'trickle-header' | 'stalled-header' | 'stalled-body';
  socket: Socket;
  openedAt: number;
  closedAt?: number;
  answer: string;
}

describe('slow clients', () => {
  let stack: Stack;
  const test = stackTest(() => stack);

  beforeAll(async () => {
    stack = await startStack();
    await stack.createUser('kirk', PASSWORD, { groups: ['Federation'] });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  test('200 slowloris connections: signed-in traffic has 0 failures; nginx drops them all within its timeouts', async () => {
    const { session } = await stack.login('kirk', PASSWORD, '/');
    expect(session).not.toBeNull();
    const slow: Slow[] = [];
    const open = (kind: Slow['kind'], first: string): Slow => {
      const socket = connect({ host: '127.0.0.1', port: stack.proxyPort });
      const s: Slow = { kind, socket, openedAt: Date.now(), answer: '' };
      socket.on('data', (c: Buffer) => (s.answer += c.toString('latin1')));
      socket.on('close', () => (s.closedAt ??= Date.now()));
      socket.on('error', () => undefined);
      socket.write(first);
      slow.push(s);
      return s;
    };
    const cookie = `Cookie: ${String(session)}\r\n`;
    for (let i = 0; i < 100; i++) open('trickle-header', `GET /reports/${i} HTTP/1.1\r\nHost: gateway.test\r\n${cookie}X-Slow: `);
    for (let i = 0; i < 50; i++) open('stalled-header', `GET /reports/${i} HTTP/1.1\r\nHost: gate`);
    for (let i = 0; i < 50; i++) {
      open('stalled-body', `POST /login HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nusername=kirk&pass`);
    }
    // A byte a second: each one resets nothing, as the header timeout covers the whole header.
    const trickle = setInterval(() => {
      for (const s of slow) if (s.kind === 'trickle-header' && s.closedAt === undefined) s.socket.write('a');
    }, 1000);

    const load = startLoad({ port: stack.proxyPort, path: '/reports/live', headers: { cookie: String(session), accept: 'text/html' }, connections: 4 });
    let stopped = false;
    try {
      await untilAnswered(load, 200);
      const allClosed = await waitUntil(() => slow.every((s) => s.closedAt !== undefined), (Math.max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 10) * 1000);
      const result = await load.stop();
      stopped = true;

      const open = slow.filter((s) => s.closedAt === undefined).map((s) => s.kind);
      expect({ allClosed, open }).toEqual({ allClosed: true, open: [] });
      const heldFor = (kind: Slow['kind']) => slow.filter((s) => s.kind === kind).map((s) => (s.closedAt! - s.openedAt) / 1000);
      console.log(
        `slow clients: held for at most ${JSON.stringify({ 'trickle-header': Math.max(...heldFor('trickle-header')), 'stalled-header': Math.max(...heldFor('stalled-header')), 'stalled-body': Math.max(...heldFor('stalled-body')) })} s; ` +
          `signed-in load ${result.total} requests, ${result.failed} failed`,
      );
      // Dropped by the timeouts (a second of slack for timer granularity and a busy machine).
      for (const t of heldFor('trickle-header')) expect(t).toBeLessThan(HEADER_TIMEOUT_S + 5);
      for (const t of heldFor('stalled-header')) expect(t).toBeLessThan(HEADER_TIMEOUT_S + 5);
      for (const t of heldFor('stalled-body')) expect(t).toBeLessThan(BODY_TIMEOUT_S + 5);
      // nginx hangs up on them (a timed-out request gets no answer), and never with a 5xx.
      for (const s of slow) expect(s.answer).not.toMatch(/^HTTP\/1\.1 5/);
      expect(slow.filter((s) => s.kind === 'trickle-header' && s.answer !== '')).toEqual([]);
      // No reload here, so not even a resent request.
      expect({ failed: result.failed, retried: result.retried, errors: result.errors, samples: result.samples }).toEqual({ failed: 0, retried: 0, errors: {}, samples: [] });
      expect(result.total).toBeGreaterThan(500);
      // The upstream never saw a slow request.
      expect(stack.upstream.seen.filter((r) => r.url !== '/reports/live')).toEqual([]);
      expect(stack.nginx.errorLog()).not.toMatch(/exited on signal|worker_connections are not enough/);
    } finally {
      clearInterval(trickle);
      for (const s of slow) s.socket.destroy();
      if (!stopped) await load.stop();
    }
  }, 60_000);
});
