// The SSRF address policy: which IP addresses image URLs may reach. A table of addresses and the verdict, with
// the range each falls in, covering the forms a reviewer found the old hand-written tables treated as public.
import { describe, expect, it } from 'vitest';
import { addressRange, isPrivateAddress } from '../../src/server/address-policy.js';

const REFUSED: Array<[string, string]> = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.1.2.3', 'private'],
  ['172.20.0.1', 'private'],
  ['192.168.1.1', 'private'],
  ['169.254.169.254', 'linkLocal'],
  ['100.64.0.1', 'carrierGradeNat'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['224.0.0.1', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.2.1', 'reserved'], // TEST-NET-1
  ['198.18.0.1', 'reserved'], // benchmarking
  ['192.88.99.1', 'reserved'], // 6to4 relay anycast
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['fe80::1', 'linkLocal'],
  ['fe80::1%eth0', 'linkLocal'],
  ['fd00::1', 'uniqueLocal'],
  ['fec0::1', 'deprecatedSiteLocal'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'reserved'], // documentation
  ['100::1', 'discard'],
  ['2001::1', 'teredo'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ['2002:c0a8:101::1', '6to4'],
  ['2002:808:808::1', '6to4'],
  ['2001:10::1', 'deprecatedOrchid'],
  ['2001:20::1', 'orchid2'],
  ['2001:2::1', 'benchmarking'],
  ['64:ff9b::a00:1', 'rfc6052'], // NAT64 of 10.0.0.1
  ['64:ff9b::808:808', 'rfc6052'], // NAT64 hides its target, so even 8.8.8.8 behind it is refused
  ['::ffff:0:7f00:1', 'rfc6145'],
  // IPv4-mapped: judged as the IPv4 address inside, however it is written.
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::FFFF:7F00:1', 'loopback'],
  ['::ffff:a9fe:a9fe', 'linkLocal'],
  ['::ffff:10.0.0.1', 'private'],
  ['::127.0.0.1', 'loopback'], // deprecated IPv4-compatible form
  // Outside IPv6 global unicast (2000::/3), which ipaddr.js alone would call 'unicast'.
  ['::2', 'unallocated'],
  ['::7f00:1', 'unallocated'],
  ['4000::1', 'unallocated'],
  // Not an IP literal at all.
  ['localhost', 'invalid'],
  ['127.1', 'invalid'],
  ['0x7f.0.0.1', 'invalid'],
  ['[::1]', 'invalid'],
  ['', 'invalid'],
];

const ALLOWED = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.215.14',
  '::ffff:8.8.8.8',
  '2606:4700:4700::1111',
  '2001:4860:4860::8888',
  '2a00:1450:4001:82a::200e',
];

describe('address policy', () => {
  it.each(REFUSED)('refuses %s (%s)', (ip, range) => {
    expect(addressRange(ip)).toBe(range);
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(ALLOWED)('allows public unicast %s', (ip) => {
    expect(addressRange(ip)).toBe('unicast');
    expect(isPrivateAddress(ip)).toBe(false);
  });
});
