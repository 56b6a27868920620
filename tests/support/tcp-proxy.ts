/**
 * A loopback TCP relay used to take a real database "down" and bring it back without touching the
 * shared server: `cut()` drops every connection and refuses new ones, `hang()` drops them and then
 * accepts new ones but never answers (a database host that stopped responding), `restore()`
 * forwards again.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  hang(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let port = 0;
  let hanging = false;
  const makeServer = () =>
    createServer((client) => {
      sockets.add(client);
      if (hanging) {
        // Accepted, then silence: the client's own timeouts must give up.
        client.on('error', () => client.destroy());
        return;
      }
      const upstream = connect({ host: targetHost, port: targetPort });
      sockets.add(client);
      sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  let server: ReturnType<typeof makeServer> | null = makeServer();
  const listen = (s: NonNullable<typeof server>, p: number) =>
    new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.listen(p, '127.0.0.1', () => res());
    });
  await listen(server, 0);
  port = (server.address() as AddressInfo).port;
  const stop = async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server) {
      const s = server;
      server = null;
      await new Promise<void>((r) => s.close(() => r()));
    }
  };
  return {
    port,
    cut: stop,
    async hang() {
      await stop();
      hanging = true;
      server = makeServer();
      await listen(server, port);
    },
    async restore() {
      if (hanging) {
        hanging = false;
        await stop();
      }
      if (server) return;
      server = makeServer();
      await listen(server, port);
    },
    close: stop,
  };
}
