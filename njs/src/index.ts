import { check } from './adapter.js';

/** nginx: `js_import gate from gate.js;` (http level) and `js_set $gate gate.check;`. The renewal's second half is renew.ts. The Tableau pass-through is tableau.ts. */
export default { check };
