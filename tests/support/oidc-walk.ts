/**
 * Walks an OIDC sign-in by hand over raw HTTP, as a browser would: one cookie jar per host, the
 * gateway reached at a public origin (e.g. http://gw.test, sent to nginx's port with that Host
 * header), the provider on loopback. Redirects are followed one by one so a test can stop at any hop.
 */
import { rawRequest, setCookies, type HttpResult } from './http.js';
import type { Stack } from './stack.js';

/** Cookies by host, then by name. */
export type Jar = Map<string, Map<string, string>>;

function storeCookies(jar: Jar, host: string, res: HttpResult): void {
  const cookies = jar.get(host) ?? new Map<string, string>();
  jar.set(host, cookies);
  for (const line of setCookies(res)) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=.*1970/i.test(a));
    if (expired || value === '') cookies.delete(name);
    else cookies.set(name, value);
  }
}

export interface OidcWalk {
  /** One GET to the gateway (by the public origin) or the provider, with that origin's cookies. */
  get(stack: Stack, jar: Jar, url: string): Promise<HttpResult>;
  /** Follows redirects from `url` until a non-redirect, or until `stopAt` matches the next URL. */
  follow(stack: Stack, jar: Jar, url: string, stopAt?: (next: URL) => boolean): Promise<{ res: HttpResult; url: string }>;
  /** The gateway's session cookie value in `jar`, if any. */
  sessionOf(jar: Jar, stack: Stack): string | undefined;
}

/** The walk for a gateway whose public origin is `publicOrigin` (http only). */
export function oidcWalk(publicOrigin: string): OidcWalk {
  const publicHost = new URL(publicOrigin).host;
  const walk: OidcWalk = {
    async get(stack, jar, url) {
      const u = new URL(url, publicOrigin);
      const gateway = u.origin === publicOrigin;
      const host = gateway ? publicHost : u.host;
      const cookie = [...(jar.get(host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await rawRequest(gateway ? stack.proxyPort : Number(u.port), 'GET', u.pathname + u.search, {
        host,
        accept: 'text/html',
        ...(cookie === '' ? {} : { cookie }),
      });
      storeCookies(jar, host, res);
      return res;
    },
    async follow(stack, jar, url, stopAt) {
      let current = new URL(url, publicOrigin).href;
      for (let hop = 0; hop < 20; hop++) {
        const res = await walk.get(stack, jar, current);
        const location = res.headers.location;
        if (res.status < 300 || res.status > 399 || typeof location !== 'string') return { res, url: current };
        const next = new URL(location, current);
        if (stopAt?.(next)) return { res, url: next.href };
        current = next.href;
      }
      throw new Error('too many redirects');
    },
    sessionOf: (jar, stack) => jar.get(publicHost)?.get(stack.cookieName),
  };
  return walk;
}
