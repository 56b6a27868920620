/**
 * A small seeded PRNG (mulberry32) for the reliability tests: random kill times and fuzz inputs that
 * a failing run can repeat. The seed comes from RELIABILITY_SEED, else from the clock; tests print it.
 */
export function createPrng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function seedFromEnv(): number {
  const fromEnv = Number(process.env.RELIABILITY_SEED);
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : (Date.now() % 2_147_483_647) + 1;
}
