import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../scripts/lib/nginx-runtime.js';
import { createMetrics, type AuthMetrics } from './metrics.js';

/** A provider stand-in on loopback: /ok answers 200, /down 503, anything else never answers. */
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/ok') res.end('{}');
    else if (req.url === '/down') res.writeHead(503).end();
    // Anything else: left open (a provider that hangs).
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function valueOf(metrics: AuthMetrics, name: string, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.registry.getSingleMetric(name)!.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l) && Object.keys(v.labels).length === Object.keys(labels).length)?.value ?? 0;
}

describe('timedFetch: identity-provider call latency and errors', () => {
  it('times each call by outcome and counts 5xx, network failures and timeouts as errors', async () => {
    const metrics = createMetrics();
    const fetchTableau = metrics.timedFetch('tableau');
    expect((await fetchTableau(`${base}/ok`)).status).toBe(200);
    expect((await fetchTableau(`${base}/down`)).status).toBe(503);
    await expect(fetchTableau(`http://127.0.0.1:${await freePort()}/`)).rejects.toThrow();
    await expect(fetchTableau(`${base}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toThrow();

    expect(await valueOf(metrics, 'gateway_auth_idp_request_duration_seconds', { idp: 'tableau', outcome: 'ok', le: '+Inf' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_idp_errors_total', { idp: 'tableau', kind: 'http_5xx' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_idp_errors_total', { idp: 'tableau', kind: 'network' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_idp_errors_total', { idp: 'tableau', kind: 'timeout' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_idp_request_duration_seconds', { idp: 'tableau', outcome: 'timeout', le: '+Inf' })).toBe(1);
    expect(await valueOf(metrics, 'gateway_auth_idp_errors_total', { idp: 'oidc', kind: 'network' })).toBe(0);
  });

  it('counts a 4xx as an answer, not an error', async () => {
    const four = createServer((_req, res) => res.writeHead(401).end());
    await new Promise<void>((resolve) => four.listen(0, '127.0.0.1', resolve));
    try {
      const metrics = createMetrics();
      const res = await metrics.timedFetch('oidc')(`http://127.0.0.1:${(four.address() as AddressInfo).port}/token`);
      expect(res.status).toBe(401);
      expect(await valueOf(metrics, 'gateway_auth_idp_request_duration_seconds', { idp: 'oidc', outcome: 'ok', le: '+Inf' })).toBe(1);
      expect((await metrics.registry.getSingleMetric('gateway_auth_idp_errors_total')!.get()).values).toEqual([]);
    } finally {
      four.closeAllConnections();
      await new Promise((resolve) => four.close(resolve));
    }
  });
});
