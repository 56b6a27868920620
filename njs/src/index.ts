import { check } from './adapter.js';

export default { check };
