/**
 * A throwaway certificate authority made with openssl for one test run, a server certificate it
 * signed (for localhost and 127.0.0.1), and an HTTPS client that trusts only that CA.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';
import type { OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { HttpResult } from './http.js';

export interface TestCa {
  /** PEM of the CA certificate (what a client trusts). */
  caPem: string;
  /** Server certificate and key files (nginx's ssl_certificate and ssl_certificate_key). */
  certFile: string;
  keyFile: string;
  /** base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list). */
  spkiSha256: string;
}

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Makes a P-256 CA and a server certificate for localhost / 127.0.0.1 in `dir`, valid for two days. */
export function makeTestCa(dir: string): TestCa {
  const at = (name: string) => join(dir, name);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=Gateway test CA']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(at('server.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.crt'), '-days', '2', '-extfile', at('server.ext')]);
  const publicKey = openssl(['x509', '-in', at('server.crt'), '-pubkey', '-noout']);
  const spki = openssl(['pkey', '-pubin', '-outform', 'der'], publicKey);
  const spkiSha256 = openssl(['dgst', '-sha256', '-binary'], spki).toString('base64');
  return { caPem: readFileSync(at('ca.crt'), 'utf8'), certFile: at('server.crt'), keyFile: at('server.key'), spkiSha256 };
}

/**
 * Another server certificate from the CA that makeTestCa made in `dir`, for `names` (DNS names and
 * IP addresses, e.g. ['app.test', '127.0.0.1'], or explicit `DNS:...`/`IP:...` entries), in
 * `<label>.crt` / `<label>.key`. A second CA
 * (makeTestCa in another folder) gives a certificate nobody trusts.
 */
export function issueServerCert(dir: string, label: string, names: string[]): { certFile: string; keyFile: string } {
  const at = (name: string) => join(dir, name);
  const san = names.map((n) => (/^(DNS|IP):/.test(n) ? n : /^[0-9.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', at(`${label}.key`), '-out', at(`${label}.csr`), '-subj', `/CN=${names[0]}`]);
  writeFileSync(at(`${label}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  openssl(['x509', '-req', '-in', at(`${label}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${label}.crt`), '-days', '2', '-extfile', at(`${label}.ext`)]);
  return { certFile: at(`${label}.crt`), keyFile: at(`${label}.key`) };
}

/**
 * One HTTPS request to 127.0.0.1:`port` (no redirects followed), verifying the server's
 * certificate against `caPem` for the name `servername`.
 */
export function httpsRequest(
  port: number,
  caPem: string,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders = {},
  body?: string,
  servername = 'localhost',
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers, ca: caPem, servername, agent: false as unknown as Agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
