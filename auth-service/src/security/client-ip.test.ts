import { describe, expect, test } from '@jest/globals';
import { normaliseClientIp } from './client-ip.js';

describe('normaliseClientIp', () => {
  test.each([
    ['IPv4 stays as is', '203.0.113.7', '203.0.113.7'],
    ['IPv4-mapped IPv6 becomes the IPv4 nginx prints', '::ffff:127.0.0.1', '127.0.0.1'],
    ['upper-case mapped prefix', '::FFFF:10.1.2.3', '10.1.2.3'],
    ['real IPv6 stays as is', '2001:db8::1', '2001:db8::1'],
    ['IPv6 loopback stays as is', '::1', '::1'],
    ['mapped prefix with a non-IPv4 tail stays as is', '::ffff:abcd', '::ffff:abcd'],
    ['missing address (socket already closed)', undefined, ''],
  ])('%s', (_name, input, expected) => {
    expect(normaliseClientIp(input)).toBe(expected);
  });
});
