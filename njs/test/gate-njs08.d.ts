/**
 * Type of njs/dist/gate-njs08.js (the gate for njs >= 0.8 with the revocation dict, index-njs08.ts)
 * as the njs runner imports it; see gate.d.ts.
 */
declare const gate08: {
  check(r: unknown): 'allow' | 'login' | 'deny' | 'forbidden' | 'bad-request';
};
export default gate08;
