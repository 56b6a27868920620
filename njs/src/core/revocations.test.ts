import { describe, expect, it } from '@jest/globals';
import { revocationReplyCases } from '../../test/cases/revocation-cases.js';
import { CURSOR_KEY, isSid, nextCursor, parseRevocationsReply, revocationsUrl } from './revocations.js';

describe('parseRevocationsReply', () => {
  it.each(revocationReplyCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const reply = parseRevocationsReply(c.body);
    expect(reply).toEqual(c.expect);
    if (reply !== null) expect(nextCursor(reply)).toBe(c.cursor);
  });
});

describe('revocation feed helpers', () => {
  it('asks for the whole window without a cursor, and from the cursor with one', () => {
    expect(revocationsUrl('http://127.0.0.1:3000/auth/revocations', undefined)).toBe('http://127.0.0.1:3000/auth/revocations');
    expect(revocationsUrl('http://127.0.0.1:3000/auth/revocations', 1699999995000)).toBe('http://127.0.0.1:3000/auth/revocations?since=1699999995000');
  });

  it('keeps its cursor under a key no sid can take', () => {
    expect(isSid(CURSOR_KEY)).toBe(false);
    expect(isSid('AAAAAAAAAAAAAAAAAAAAAA')).toBe(true);
  });
});
