import { describe, expect, it } from '@jest/globals';
import { sameSubnet } from './ip-binding.js';

describe('sameSubnet', () => {
  const cases: Array<[string, string, string, boolean]> = [
    ['same IPv4 address', '192.0.2.7', '192.0.2.7', true],
    ['IPv4 .0 and .255 of one /24', '192.0.2.0', '192.0.2.255', true],
    ['IPv4 next /24', '192.0.2.7', '192.0.3.7', false],
    ['IPv4 whose /24 text is a prefix of the other', '10.0.11.5', '10.0.1.15', false],
    ['IPv4 1.2.3.x vs 11.2.3.x', '1.2.3.4', '11.2.3.4', false],
    ['IPv6 in one /64, different interface ids', '2001:db8:a:b::1', '2001:db8:a:b:ffff:ffff:ffff:ffff', true],
    ['IPv6 spelled with and without zero compression', '2001:db8:0:0:1::1', '2001:db8::2', true],
    ['IPv6 with leading zeros and upper case', '2001:0DB8:000a:000b::1', '2001:db8:a:b::9', true],
    ['IPv6 fully written, eight groups', '2001:db8:a:b:1:2:3:4', '2001:db8:a:b::', true],
    ['IPv6 next /64', '2001:db8:a:b::1', '2001:db8:a:c::1', false],
    ['IPv6 loopback and ::2 (both in ::/64)', '::1', '::2', true],
    ['IPv4 vs IPv6', '192.0.2.7', '2001:db8::7', false],
    ['IPv4-mapped vs plain IPv4 of the same address', '::ffff:192.0.2.7', '192.0.2.7', false],
    ['IPv4-mapped in one /24', '::ffff:192.0.2.7', '::ffff:192.0.2.8', true],
    ['IPv4-mapped in different /24s (would share ::ffff:0:0/64)', '::ffff:192.0.2.7', '::ffff:198.51.100.7', false],
    ['two "::"', '2001:db8::1::2', '2001:db8::3', false],
    ['":::"', '2001:db8:::1', '2001:db8::1', false],
    ['nine groups', '1:2:3:4:5:6:7:8:9', '1:2:3:4::', false],
    ['seven groups without "::"', '1:2:3:4:5:6:7', '1:2:3:4::', false],
    ['a group of five hex digits', '2001:db8:a:b:12345::', '2001:db8:a:b::', false],
    ['a non-hex group', '2001:db8:a:g::1', '2001:db8:a:g::2', false],
    ['empty strings', '', '', false],
    ['unix socket peer', 'unix:', 'unix:', false],
  ];
  it.each(cases)('%s', (_name, a, b, expected) => {
    expect(sameSubnet(a, b)).toBe(expected);
    expect(sameSubnet(b, a)).toBe(expected);
  });
});
