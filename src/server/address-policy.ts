// Which network addresses the server may fetch image URLs from: public unicast only. The ranges come from
// ipaddr.js (RFC 6890 special-purpose registries), not from a table of our own, plus the one rule it lacks.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * IANA's IPv6 global unicast space. ipaddr.js calls every IPv6 address outside its special ranges 'unicast',
 * including ::2, 1::1 or 4000::1, which lie in space the IETF reserves and nobody can route to.
 */
const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * The range an address falls in: ipaddr.js's name ('unicast', 'loopback', 'private', 'teredo', '6to4',
 * 'deprecatedOrchid', ...) after unwrapping IPv4-mapped IPv6 to its IPv4 address (ipaddr.js also reads the
 * deprecated IPv4-compatible '::a.b.c.d' that way). 'invalid' for anything but a canonical IP literal, and
 * 'unallocated' for IPv6 outside 2000::/3 that ipaddr.js would call unicast.
 */
export function addressRange(ip: string): string {
  if (isIP(ip) === 0) return 'invalid';
  const addr = ipaddr.process(ip);
  const range = addr.range();
  if (range === 'unicast' && addr.kind() === 'ipv6' && !addr.match(IPV6_GLOBAL_UNICAST)) return 'unallocated';
  return range;
}

/**
 * Whether the server must not connect to `ip` unless private targets are allowed: everything that is not public
 * unicast (loopback, private, link-local, unique local, carrier-grade NAT, reserved, benchmarking, multicast,
 * broadcast, unspecified, and the IPv6 transition ranges Teredo, 6to4 and NAT64, which hide an IPv4 address).
 */
export function isPrivateAddress(ip: string): boolean {
  return addressRange(ip) !== 'unicast';
}
