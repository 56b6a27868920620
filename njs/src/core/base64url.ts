/**
 * Strict base64url checks. `Buffer.from(s, 'base64url')` in njs (and Node) silently skips
 * characters outside the alphabet and ignores the unused low bits of the last character, so
 * many different strings decode to the same bytes (see njs-notes, "Base64url trap"). The gate
 * only ever accepts the one canonical, unpadded spelling.
 */

/** Any character outside the base64url alphabet. */
const NOT_BASE64URL = /[^A-Za-z0-9_-]/;

/**
 * True when `s` is non-empty, uses only the base64url alphabet (no '=', '+', '/', whitespace) and
 * has a length a base64url encoding can have (length % 4 !== 1).
 * Not checked: that the unused low bits of the last character are zero (callers that know the
 * decoded length check it, see `hasCanonicalSha256Shape`).
 */
export function isStrictBase64url(s: string): boolean {
  // search, not test: in njs 0.7.9 RegExp.prototype.test allocates ~20 KB per call and costs a few µs;
  // search with the negated class answers the same question for a fraction of that (measured).
  return s.length > 0 && s.length % 4 !== 1 && s.search(NOT_BASE64URL) < 0;
}

/**
 * Last characters allowed for a 32-byte value in unpadded base64url: 43 characters carry 258 bits,
 * so the final character's 2 low bits must be zero (values 0, 4, 8, ..., 60).
 */
const SHA256_LAST_CHARS = 'AEIMQUYcgkosw048';

/**
 * True when `s` has the length (43) and last character of the canonical unpadded base64url
 * spelling of a 32-byte value (an HS256 MAC). The other characters are not checked here: the gate
 * compares the whole string with the MAC it computed, which is canonical; anywhere that comparison
 * does not follow, also require `isStrictBase64url`.
 */
export function hasCanonicalSha256Shape(s: string): boolean {
  return s.length === 43 && SHA256_LAST_CHARS.indexOf(s.charAt(42)) >= 0;
}
