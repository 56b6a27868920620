/**
 * The client address as nginx's `$remote_addr` prints it, which the gate compares with the token's
 * `ip` claim character for character. Node reports IPv4 clients of a dual-stack socket as
 * IPv4-mapped IPv6 (`::ffff:127.0.0.1`); nginx prints `127.0.0.1`.
 */
const MAPPED_IPV4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** Returns `ip` with an IPv4-mapped prefix removed, or '' when there is none. */
export function normaliseClientIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  const mapped = MAPPED_IPV4.exec(ip);
  return mapped ? mapped[1]! : ip;
}
