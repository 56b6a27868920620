import { check, tableauApi } from './adapter.js';

export default { check, tableauApi };
