/** Type of the shipped bundle njs/dist/tableau.js (the /api/ pass-through) as the njs runner imports it. */
declare const tableau: {
  api(r: unknown): Promise<void>;
};
export default tableau;
