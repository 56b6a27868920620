/** Raw HTTP for tests and the benchmark: no redirects followed, headers sent exactly as given. */
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP/1.1 request with headers sent exactly as given (repeated names allowed via the array form). */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders | [string, string][] = {},
  body?: string | Buffer,
  /** The client's source address, e.g. '127.0.0.2' (any 127/8 address reaches 127.0.0.1 on Linux). */
  localAddress?: string,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const flat: string[] = [];
    const named: OutgoingHttpHeaders = {};
    if (!Array.isArray(headers)) {
      for (const [name, value] of Object.entries(headers)) if (value !== undefined) named[name.toLowerCase()] = value;
      if (body !== undefined && named['content-length'] === undefined) named['content-length'] = Buffer.byteLength(body);
    }
    if (Array.isArray(headers)) {
      // The raw form sends exactly these lines; HTTP/1.1 needs a Host, so add one unless given.
      if (!headers.some(([k]) => k.toLowerCase() === 'host')) flat.push('Host', `127.0.0.1:${port}`);
      for (const [k, v] of headers) flat.push(k, v);
    }
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: Array.isArray(headers) ? flat : named, agent: false, localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function setCookies(res: HttpResult): string[] {
  const v = res.headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** The name/value of every hidden input in a page (the login form's rd and CSRF token). */
export function hiddenFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const tag of html.match(/<input[^>]*type="hidden"[^>]*>/g) ?? []) {
    const name = /name="([^"]*)"/.exec(tag)?.[1];
    const value = /value="([^"]*)"/.exec(tag)?.[1] ?? '';
    if (name) out[name] = decodeEntities(value);
  }
  return out;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
