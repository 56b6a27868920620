/// <reference types="njs-types/ngx_http_js_module" />
/**
 * njs >= 0.8 only (issue 9): copies the sessions the auth service revoked into nginx's shared dict
 * `gate_revoked`, which every worker's gate reads (adapter.ts decide). Wired by nginx/njs08/
 * (rendered in only for njs >= 0.8) as `js_periodic revocations.poll interval=1s;` in an internal
 * location, so it runs in one worker; a module of its own, so the gate's requests never build it.
 */
import { CURSOR_KEY, nextCursor, parseRevocationsReply, revocationsUrl } from './core/revocations.js';

/** The part of njs 0.8's shared dict API used here (njs-types 0.7 does not declare it). */
interface SharedDict {
  get(key: string): string | number | undefined;
  set(key: string, value: string, timeout?: number): unknown;
  has(key: string): boolean;
  delete(key: string): boolean;
}

/** js_periodic hands its handler a session object with the location's variables. */
interface PeriodicSession {
  variables: { [name: string]: string | undefined };
}

/** Set while polls fail, so that an outage is logged once when it starts and once when it ends. */
const DOWN_KEY = '#down';
/** Pages fetched per run at most: a backlog (a restart, a mass revocation) drains over a few runs. */
const MAX_PAGES = 10;

/**
 * `js_periodic revocations.poll` — fetches `$gate_revocations_url?since=<cursor>` and stores each
 * listed sid with the ttl the service gave (the time until its last token expires), then the next
 * cursor. Never throws: when the service is down or answers nonsense the dict keeps what it has
 * (sids revoked before stay refused until their ttl; later ones wait for the token TTL, the 0.7.9
 * bound) and valid tokens keep working. No request ever waits for this.
 */
async function poll(s: PeriodicSession): Promise<void> {
  const shared = (ngx as unknown as { shared?: { [zone: string]: SharedDict | undefined } }).shared;
  const dict = shared === undefined ? undefined : shared.gate_revoked;
  const base = s.variables.gate_revocations_url || '';
  if (dict === undefined || base === '') {
    ngx.log(ngx.ERR, 'gate: revocations: needs js_shared_dict_zone gate_revoked and $gate_revocations_url (nginx/njs08/)');
    return;
  }
  try {
    for (let page = 0; page < MAX_PAGES; page++) {
      const cursor = dict.get(CURSOR_KEY);
      const reply = await ngx.fetch(revocationsUrl(base, typeof cursor === 'string' ? Number(cursor) : undefined), {
        headers: { Accept: 'application/json' },
      });
      if (reply.status !== 200) throw new Error('status ' + reply.status);
      // Not `parse(await …)`: njs 0.8 refuses await in arguments ("not supported"); 0.7.9 compiles it.
      const body = await reply.text();
      const parsed = parseRevocationsReply(body);
      if (parsed === null) throw new Error('malformed reply');
      for (let i = 0; i < parsed.revoked.length; i++) dict.set(parsed.revoked[i].sid, '1', parsed.revoked[i].ttl);
      dict.set(CURSOR_KEY, String(nextCursor(parsed)));
      if (!parsed.more) break;
    }
    if (dict.has(DOWN_KEY)) {
      dict.delete(DOWN_KEY);
      ngx.log(ngx.WARN, 'gate: revocations: ' + base + ' answers again');
    }
  } catch (e) {
    if (!dict.has(DOWN_KEY)) {
      dict.set(DOWN_KEY, '1');
      const message = e instanceof Error ? e.message : String(e);
      ngx.log(ngx.ERR, 'gate: revocations: cannot poll ' + base + ' (' + message + '); sessions revoked from now on are refused only when their token expires');
    }
  }
}

export default { poll };
