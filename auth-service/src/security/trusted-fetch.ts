/**
 * A `fetch` for https calls that must trust exactly the given CA certificates (TABLEAU_CA_FILE): a
 * Tableau Server behind a corporate or private CA. The global fetch (undici) cannot take a CA
 * without undici's own Agent, which Node does not export; node:https takes `ca` directly.
 */
import { request } from 'node:https';

/**
 * Creates a fetch that sends each request with node:https, verifying the server's certificate
 * against `caPem` only (Node's built-in list is not consulted) and the URL's host name (also sent
 * as SNI). Supports what the identity-provider clients use: method, headers, a string or absent
 * body, `signal` (an abort or timeout rejects with its reason, as fetch does) and `redirect:
 * 'error'` (a 3xx answer rejects). Not supported, and refused: http: URLs (there is no certificate
 * to check), stream bodies. Redirects are never followed.
 */
export function createTrustedFetch(caPem: string): typeof fetch {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.protocol !== 'https:') {
        reject(new TypeError(`trusted fetch: only https URLs (received ${url.protocol})`));
        return;
      }
      if (init.body !== undefined && init.body !== null && typeof init.body !== 'string') {
        reject(new TypeError('trusted fetch: only string bodies'));
        return;
      }
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const headers = Object.fromEntries(new Headers(init.headers).entries());
      if (typeof init.body === 'string') headers['content-length'] = String(Buffer.byteLength(init.body));
      const req = request(
        {
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port === '' ? 443 : Number(url.port),
          path: url.pathname + url.search,
          method: init.method ?? 'GET',
          headers,
          ca: caPem,
          servername: url.hostname,
          minVersion: 'TLSv1.2',
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (init.redirect === 'error' && status >= 300 && status < 400) {
            res.destroy();
            reject(new TypeError(`trusted fetch: redirect (${status}) refused`));
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            signal?.removeEventListener('abort', onAbort);
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined) continue;
              for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
            }
            const empty = status === 204 || status === 304 || init.method === 'HEAD';
            resolve(new Response(empty ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: responseHeaders }));
          });
        },
      );
      const onAbort = () => {
        req.destroy();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
      if (typeof init.body === 'string') req.write(init.body);
      req.end();
    });
}
