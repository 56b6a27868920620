import { tableauApi } from './tableau-adapter.js';

/** nginx: `js_import tableau from tableau.js;` in the /api/ location, then `js_content tableau.api;`. */
export default { api: tableauApi };
