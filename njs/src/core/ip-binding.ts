/**
 * Subnet comparison for SESSION_IP_BINDING=subnet. Pure; njs 0.7.9 subset. One exported function on
 * purpose: njs re-runs module code on every request, and every top-level function costs there.
 */

/**
 * True when `a` and `b` (addresses as nginx writes $remote_addr) lie in the same /24 (IPv4) or the
 * same /64 (IPv6). IPv6 is compared by value, so any valid zero compression matches (`2001:db8::1`
 * and `2001:db8:0:0::2`). An address with a dotted IPv4 tail (`::ffff:192.0.2.7`) compares as text
 * up to its last dot, so it matches only the same form in the same /24, never a plain IPv4 address
 * and never another mapped /24 (a /64 would put every IPv4 client in one subnet).
 *
 * Guaranteed: false for anything that is not two addresses of one family (empty strings, `unix:`,
 * mixed IPv4/IPv6). Not checked: that IPv4 octets are in range (nginx's text is trusted), zone ids.
 */
export function sameSubnet(a: string, b: string): boolean {
  const dot = a.lastIndexOf('.');
  if (dot >= 0 || b.indexOf('.') >= 0) {
    return dot > 0 && dot === b.lastIndexOf('.') && a.slice(0, dot) === b.slice(0, dot);
  }
  const both = [a, b];
  const prefixes = ['', ''];
  for (let k = 0; k < 2; k++) {
    const s = both[k];
    const gap = s.indexOf('::');
    const head = gap < 0 ? s : s.slice(0, gap);
    const tail = gap < 0 ? '' : s.slice(gap + 2);
    if (tail.indexOf('::') >= 0) return false;
    const headGroups = head === '' ? [] : head.split(':');
    const tailGroups = tail === '' ? [] : tail.split(':');
    const count = headGroups.length + tailGroups.length;
    // Without '::' all eight groups are written; with it, it stands for at least one zero group.
    if (gap < 0 ? count !== 8 : count > 7) return false;
    const tailStart = 8 - tailGroups.length;
    // Every group is checked (a malformed address never matches); the first four make the /64.
    let prefix = '';
    for (let i = 0; i < 8; i++) {
      const group = i < headGroups.length ? headGroups[i] : i < tailStart ? '0' : tailGroups[i - tailStart];
      if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return false;
      if (i < 4) prefix += parseInt(group, 16) + ':';
    }
    prefixes[k] = prefix;
  }
  return prefixes[0] === prefixes[1];
}
