/**
 * Bench-only prototype, scenario (i8) of `make bench` (njs >= 0.8 only): the gate with a
 * verified-token cache in `js_shared_dict_zone zone=gate_verified` (bench/peers.ts declares it).
 * The HMAC of a token's `header.payload` is remembered per worker group, so a session seen before
 * costs a dict lookup instead of an HMAC; everything else (cookie parsing, the constant-time
 * compare of the encoded MACs, claims, IP binding, policy, headers) runs as in the shipped gate.
 * Caching the MAC keeps the checks exact: it is a pure function of the key (chosen by the header
 * segment) and the data, so a forged signature still fails the compare. Not shipped: to become a
 * feature it would need a size bound per entry and a flush on key rotation.
 * Same njs subset as njs/src (no destructuring, spread, for-of, classes).
 */
import { act, decide, hmacSha256, loadRuntime, logGateError, type GateAction } from '../../njs/src/adapter.js';

interface VerifiedDict {
  get(key: string): string | undefined;
  set(key: string, value: string): unknown;
}

function check(r: NginxHTTPRequest): GateAction {
  try {
    const runtime = loadRuntime();
    const dict = (ngx as unknown as { shared: { [zone: string]: VerifiedDict } }).shared.gate_verified;
    const cachedHmac = function (secret: string, data: string): string {
      const hit = dict.get(data);
      if (hit !== undefined) return hit;
      const mac = hmacSha256(secret, data);
      dict.set(data, mac);
      return mac;
    };
    return act(r, decide(r, runtime, r.headersIn.Cookie, cachedHmac));
  } catch (e) {
    logGateError(r, e);
    return 'deny';
  }
}

export default { check: check };
