/**
 * Replies of GET /auth/revocations as the poller (njs/src/revocations.ts) reads them, shared by jest
 * and the njs runner. njs 0.7.9 subset.
 */
import type { RevocationsReply } from '../../src/core/revocations.js';

export interface RevocationReplyCase {
  name: string;
  body: string;
  /** null: the reply is refused and the poller keeps what it has. */
  expect: RevocationsReply | null;
  /** The next poll's `since` (when expect is not null). */
  cursor?: number;
}

const SID_A = 'AAAAAAAAAAAAAAAAAAAAAA';
const SID_B = 'b-b_b-b_b-b_b-b_b-b_bb';

export const revocationReplyCases: RevocationReplyCase[] = [
  {
    name: 'reads the sids and their ttl; the next poll reaches 5 s back for late commits',
    body: JSON.stringify({ until: 1700000000000, more: false, revoked: [{ sid: SID_A, ttl: 330000 }, { sid: SID_B, ttl: 1 }] }),
    expect: { until: 1700000000000, more: false, revoked: [{ sid: SID_A, ttl: 330000 }, { sid: SID_B, ttl: 1 }] },
    cursor: 1699999995000,
  },
  {
    name: 'continues exactly at `until` when the page was full (more)',
    body: JSON.stringify({ until: 1700000000123, more: true, revoked: [{ sid: SID_A, ttl: 1000 }] }),
    expect: { until: 1700000000123, more: true, revoked: [{ sid: SID_A, ttl: 1000 }] },
    cursor: 1700000000123,
  },
  {
    name: 'accepts an empty list',
    body: '{"until":1700000000000,"more":false,"revoked":[]}',
    expect: { until: 1700000000000, more: false, revoked: [] },
    cursor: 1699999995000,
  },
  {
    name: 'drops entries whose sid is not base64url of 16-128 characters or whose ttl is not 1 ms to 1e9 ms, keeps the rest',
    body: JSON.stringify({
      until: 1700000000000,
      more: false,
      revoked: [
        { sid: 'short', ttl: 1000 },
        { sid: '#since#since#since#since', ttl: 1000 },
        { sid: SID_A + '\n', ttl: 1000 },
        { sid: 'x'.repeat(129), ttl: 1000 },
        { sid: 12345678901234567890, ttl: 1000 },
        { sid: SID_A, ttl: 0 },
        { sid: SID_A, ttl: '1000' },
        { sid: SID_A, ttl: 2e9 },
        null,
        'AAAAAAAAAAAAAAAAAAAAAA',
        { sid: SID_B, ttl: 1500.7 },
      ],
    }),
    expect: { until: 1700000000000, more: false, revoked: [{ sid: SID_B, ttl: 1500 }] },
    cursor: 1699999995000,
  },
  { name: 'refuses a body that is not JSON (an HTML error page)', body: '<html>503</html>', expect: null },
  { name: 'refuses JSON null', body: 'null', expect: null },
  { name: 'refuses a reply without until', body: '{"more":false,"revoked":[]}', expect: null },
  { name: 'refuses an until that is not a time in milliseconds', body: '{"until":"1700000000000","more":false,"revoked":[]}', expect: null },
  { name: 'refuses a negative until', body: '{"until":-5,"more":false,"revoked":[]}', expect: null },
  { name: 'refuses a reply without more', body: '{"until":1700000000000,"revoked":[]}', expect: null },
  { name: 'refuses revoked that is not a list', body: '{"until":1700000000000,"more":false,"revoked":{"0":{"sid":"AAAAAAAAAAAAAAAAAAAAAA","ttl":1}}}', expect: null },
];
