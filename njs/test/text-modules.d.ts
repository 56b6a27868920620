/** esbuild's text loader (scripts/build-njs.mjs) inlines .txt fixtures as strings in the njs runner. */
declare module '*.txt' {
  const text: string;
  export default text;
}
