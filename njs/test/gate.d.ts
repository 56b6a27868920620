/**
 * Type of the shipped bundle njs/dist/gate.js as the njs runner imports it (`./gate.js` stays
 * external when run-in-njs.ts is bundled next to it). The real request type is njs-types'
 * NginxHTTPRequest; the runner passes fakes, so it is left open here.
 */
declare const gate: {
  check(r: unknown): 'allow' | 'login' | 'deny' | 'forbidden' | 'bad-request';
};
export default gate;
