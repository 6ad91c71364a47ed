import { describe, expect, it } from 'vitest';
import { formatIpv6, isPublicIp, maskIp, parseIp, parseIpv4, parseIpv6 } from './ip-address.js';

describe('parseIp', () => {
  it.each([
    ['8.8.8.8', 4, '8.8.8.8', true],
    ['81.2.69.160', 4, '81.2.69.160', true],
    [' 1.2.3.4 ', 4, '1.2.3.4', true],
    ['::ffff:8.8.8.8', 4, '8.8.8.8', true],
    ['::ffff:10.0.0.1', 4, '10.0.0.1', false],
    ['2001:4860:4860::8888', 6, '2001:4860:4860::8888', true],
    ['2a03:2880:f003:c07:face:b00c::2', 6, '2a03:2880:f003:c07:face:b00c::2', true],
  ] as const)('%s → family %i, address %s, public %s', (input, family, address, isPublic) => {
    const p = parseIp(input);
    expect(p).not.toBeNull();
    expect(p?.family).toBe(family);
    expect(p?.address).toBe(address);
    expect(p?.isPublic).toBe(isPublic);
  });

  it.each(['', 'abc', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', '1:2:3', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '12345::', 'g::1', '1.2.3.4:80', 'localhost'])(
    'rejects %j',
    (input) => {
      expect(parseIp(input)).toBeNull();
    },
  );
});

describe('classification', () => {
  it.each([
    ['10.0.0.1', false],
    ['10.255.255.255', false],
    ['192.168.1.1', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['172.32.0.1', true],
    ['127.0.0.1', false],
    ['169.254.1.1', false],
    ['100.64.0.1', false],
    ['100.127.255.255', false],
    ['100.128.0.1', true],
    ['0.0.0.0', false],
    ['192.0.2.1', false],
    ['198.51.100.7', false],
    ['203.0.113.9', false],
    ['198.18.0.1', false],
    ['224.0.0.1', false],
    ['239.255.255.250', false],
    ['240.0.0.1', false],
    ['255.255.255.255', false],
    ['1.1.1.1', true],
    ['::1', false],
    ['::', false],
    ['fc00::1', false],
    ['fd12:3456::1', false],
    ['fe80::1', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['3fff::1', false],
    ['2001::1', false],
    ['::ffff:192.168.0.1', false],
    ['2606:4700:4700::1111', true],
  ] as const)('%s public=%s', (ip, expected) => {
    expect(isPublicIp(ip)).toBe(expected);
  });
});

describe('maskIp', () => {
  it.each([
    ['1.2.3.4', '1.2.3.0'],
    ['81.2.69.160', '81.2.69.0'],
    ['255.255.255.255', '255.255.255.0'],
    ['::ffff:1.2.3.4', '1.2.3.0'],
    ['2001:4860:4860::8888', '2001:4860:4860::'],
    ['2001:0DB8:0001:0002:0003:0004:0005:0006', '2001:db8:1::'],
    ['2001:0:0:1::1', '2001::'],
    ['2a03:2880:f003:c07:face:b00c::2', '2a03:2880:f003::'],
    ['::1', '::'],
    ['0:0:1::', '0:0:1::'],
    ['not-an-ip', null],
  ] as const)('%s → %s', (ip, masked) => {
    expect(maskIp(ip)).toBe(masked);
  });
});

describe('low-level parsers', () => {
  it.each([
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
    ['8.8.8.8', 0x08080808],
  ] as const)('parseIpv4(%s) = %i', (s, v) => {
    expect(parseIpv4(s)).toBe(v);
  });

  it.each([
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['::2', [0, 0, 0, 0, 0, 0, 0, 2]],
    ['1:2:3:4:5:6:7::', [1, 2, 3, 4, 5, 6, 7, 0]],
    ['1:2:3:4:5:6:1.2.3.4', [1, 2, 3, 4, 5, 6, 0x102, 0x304]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]],
  ] as const)('parseIpv6(%s)', (s, groups) => {
    const out = new Uint16Array(8);
    expect(parseIpv6(s, out)).toBe(true);
    expect([...out]).toEqual(groups);
  });

  it.each([
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'],
    [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    [[1, 0, 1, 0, 1, 0, 1, 0], '1:0:1:0:1:0:1:0'],
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
  ] as const)('formatIpv6(%j) = %s', (g, s) => {
    expect(formatIpv6(g)).toBe(s);
  });
});
