/**
 * The one key under which a username is stored, looked up and rate-limited: Unicode NFKC, then case
 * folded. Computing it once, here, is the point: when the limiter folded in JavaScript and the lookup
 * in PostgreSQL (`lower()`), `kİrk` got a fresh limiter bucket and still signed in as kirk (issue 8).
 *
 * Folding is lower → upper → lower, which puts every letter in the same class as Unicode full case
 * folding does for the cases that matter here (ß/ẞ/SS, final sigma, Kelvin K after NFKC, the long s,
 * dotted and dotless i), then NFKC again because case mapping can leave a string unnormalised.
 * Not guaranteed: the key is the Unicode CaseFolding.txt value (only the equivalence is used);
 * confusables across scripts (Cyrillic а vs Latin a) stay distinct.
 */
export function usernameKey(username: string): string {
  return username.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC');
}
