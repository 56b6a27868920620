import { checkRevocable } from './adapter.js';

/**
 * The gate for njs >= 0.8 with NJS_REVOCATIONS=on (built as gate-njs08.js, installed as njs/gate.js
 * by the renderer then): the same `js_set $gate gate.check;`, also refusing revoked sessions.
 * index.ts stays the bundle for njs 0.7.9, which pays nothing for this.
 */
export default { check: checkRevocable };
