/**
 * A tiny upstream that records every request it receives, so tests can assert exactly what the
 * protected app saw (and, on a deny, that it saw nothing).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** The request body as received (empty for none). */
  body: Buffer;
  /** TLS only: the SNI name the client sent (null: none), and whether it resumed an earlier session. */
  tls?: { servername: string | null; sessionReused: boolean };
}

/** An https echo upstream: its certificate chain and key (PEM files). */
export interface EchoTls {
  certFile: string;
  keyFile: string;
}

export interface EchoUpstream {
  port: number;
  seen: SeenRequest[];
  /** Headers of the last request whose name starts with x-payload (lower-case names). */
  reset(): void;
  /** Closes the connections open now (nginx's keep-alive ones): the next request opens a new one. */
  closeConnections(): void;
  close(): Promise<void>;
}

export async function startEchoUpstream(opts: { tls?: EchoTls } = {}): Promise<EchoUpstream> {
  const seen: SeenRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const socket = req.socket as Partial<TLSSocket>;
      const tls = opts.tls === undefined ? undefined : { servername: typeof socket.servername === 'string' ? socket.servername : null, sessionReused: socket.isSessionReused?.() ?? false };
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks), ...(tls ? { tls } : {}) });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
  };
  // A user in 1,000 groups makes X-Payload-groups far longer than Node's 16 KiB default.
  const server =
    opts.tls === undefined
      ? createServer({ maxHeaderSize: 1024 * 1024 }, handler)
      : createHttpsServer({ maxHeaderSize: 1024 * 1024, cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    reset: () => {
      seen.length = 0;
    },
    closeConnections: () => server.closeAllConnections(),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
