/**
 * A stand-in for Microsoft Graph's `GET /v1.0/me/transitiveMemberOf/microsoft.graph.group`, serving
 * the groups in pages of `pageSize` linked by `@odata.nextLink` (absolute URLs, as Graph does).
 * Requests without a bearer token that `isValidToken` accepts get 401, as Graph answers.
 * `setGroups`/`setPageSize` change the answers between tests; `setLoop` makes the last page link
 * back to the first, as a broken Graph answer (or a hostile one) could.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GraphGroup {
  id: string;
  displayName?: string;
}

export interface GraphFakeOptions {
  groups: GraphGroup[];
  pageSize?: number;
  isValidToken: (token: string) => Promise<boolean>;
}

export interface GraphFake {
  url: string;
  /** Every request's path and query, in order. */
  requests(): string[];
  setGroups(groups: GraphGroup[]): void;
  setPageSize(size: number): void;
  setLoop(on: boolean): void;
  close(): Promise<void>;
}

export async function startGraphFake(opts: GraphFakeOptions): Promise<GraphFake> {
  let pageSize = opts.pageSize ?? 2;
  let groups = opts.groups;
  let loop = false;
  const seen: string[] = [];
  let base = '';
  const bearer = (req: IncomingMessage) => /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  const server = createServer((req, res) => {
    void (async () => {
      seen.push(req.url ?? '');
      const url = new URL(req.url ?? '/', base);
      const token = bearer(req);
      res.setHeader('content-type', 'application/json');
      if (token === undefined || !(await opts.isValidToken(token))) {
        res.writeHead(401).end(JSON.stringify({ error: { code: 'InvalidAuthenticationToken', message: 'Access token is empty or invalid.' } }));
        return;
      }
      if (url.pathname !== '/v1.0/me/transitiveMemberOf/microsoft.graph.group') {
        res.writeHead(404).end(JSON.stringify({ error: { code: 'Request_ResourceNotFound', message: 'Not found.' } }));
        return;
      }
      const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
      const value = groups.slice(skip, skip + pageSize).map((g) => ({ '@odata.type': '#microsoft.graph.group', ...g }));
      const body: Record<string, unknown> = { '@odata.context': `${base}/v1.0/$metadata#directoryObjects`, value };
      const last = skip + pageSize >= groups.length;
      if (!last || loop) {
        const next = new URL(url);
        next.searchParams.set('$skiptoken', String(last ? 0 : skip + pageSize));
        body['@odata.nextLink'] = next.href;
      }
      res.writeHead(200).end(JSON.stringify(body));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests: () => [...seen],
    setGroups: (g) => {
      groups = g;
    },
    setPageSize: (size) => {
      pageSize = size;
    },
    setLoop: (on) => {
      loop = on;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
