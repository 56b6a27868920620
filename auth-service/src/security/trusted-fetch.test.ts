import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueServerCert, makeTestCa, type TestCa } from '../../../tests/support/tls.js';
import { createTrustedFetch } from './trusted-fetch.js';

let dir: string;
let ca: TestCa;
let otherCa: TestCa;
const servers: Server[] = [];

/** An https server with `cert`, answering with what it received (method, path, body, SNI). */
async function serve(cert: { certFile: string; keyFile: string }, opts: { status?: number; delayMs?: number } = {}): Promise<number> {
  const server = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(opts.status ?? 200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'], ...(opts.status === 302 ? { location: '/elsewhere' } : {}) });
        res.end(JSON.stringify({ method: req.method, url: req.url, body, sni: (req.socket as { servername?: string }).servername, auth: req.headers['x-tableau-auth'] }));
      }, opts.delayMs ?? 0).unref(),
    );
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-trusted-fetch-'));
  ca = makeTestCa(dir);
  mkdirSync(join(dir, 'other'));
  otherCa = makeTestCa(join(dir, 'other'));
  issueServerCert(dir, 'wrong-name', ['tableau.other.test']);
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('createTrustedFetch (TABLEAU_CA_FILE)', () => {
  test('talks to a server whose certificate the given CA signed, sends SNI, method, headers and body', async () => {
    const port = await serve(ca);
    const res = await createTrustedFetch(ca.caPem)(`https://localhost:${port}/api/3.19/auth/signin?x=1`, {
      method: 'POST',
      headers: { 'x-tableau-auth': 'tok', 'content-type': 'application/json' },
      body: '{"credentials":{}}',
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ method: 'POST', url: '/api/3.19/auth/signin?x=1', body: '{"credentials":{}}', sni: 'localhost', auth: 'tok' });
  });

  test('refuses a server whose certificate another CA signed (a man in the middle)', async () => {
    const port = await serve(otherCa);
    await expect(createTrustedFetch(ca.caPem)(`https://localhost:${port}/`)).rejects.toThrow(/self[- ]signed|unable to verify|unable to get local issuer/i);
  });

  test('refuses a certificate from the right CA for another name', async () => {
    const port = await serve({ certFile: join(dir, 'wrong-name.crt'), keyFile: join(dir, 'wrong-name.key') });
    await expect(createTrustedFetch(ca.caPem)(`https://localhost:${port}/`)).rejects.toThrow(/altnames|does not match/i);
  });

  test('a timeout signal rejects with its TimeoutError, as fetch does', async () => {
    const port = await serve(ca, { delayMs: 2000 });
    await expect(createTrustedFetch(ca.caPem)(`https://localhost:${port}/`, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  test("redirect: 'error' rejects a 3xx answer instead of returning or following it", async () => {
    const port = await serve(ca, { status: 302 });
    await expect(createTrustedFetch(ca.caPem)(`https://localhost:${port}/`, { redirect: 'error' })).rejects.toThrow(/redirect/);
  });

  test('refuses plain http: there is no certificate to check', async () => {
    await expect(createTrustedFetch(ca.caPem)('http://localhost:1/')).rejects.toThrow(/only https/);
  });
});
