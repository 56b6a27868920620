import { describe, expect, it } from '@jest/globals';
import { requestPathCases } from '../../test/cases/request-path-cases.js';
import { policyPath } from './request-path.js';

describe('policyPath', () => {
  it.each(requestPathCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(policyPath(c.uri, c.requestUri)).toBe(c.expect);
  });

  it('guarantees its result has no ;, backslash, control character, %XX, empty or dot segment', () => {
    const kept = requestPathCases.filter((c) => c.expect !== null);
    kept.forEach((c) => {
      const p = policyPath(c.uri, c.requestUri) as string;
      expect(p.startsWith('/')).toBe(true);
      expect(p).not.toMatch(/[;\\\u0000-\u001f\u007f]|%[0-9a-fA-F]{2}|\/\/|(^|\/)\.\.?(\/|$)/);
    });
    expect(kept.length).toBeGreaterThan(20);
  });
});
