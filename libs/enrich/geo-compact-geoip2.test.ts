// The compact form over a GeoIP2/GeoLite2-shaped City file (one IPv6 tree holding IPv4 under ::/96,
// 6to4 aliased onto it, nested records, networks longer than /64, record size 24), written here by
// a minimal MaxMind DB writer: it answers exactly what maxmind answers, file by file and combined.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultGeoPaths, openGeoLookup, type OpenGeoLookup } from './geo-lookup.js';
import { formatIpv6, parseIpv4, parseIpv6 } from './ip-address.js';

type Value = string | number | Value[] | { [k: string]: Value } | { uint: number; bits: 16 | 32 | 64 };

/** MaxMind DB data-section encoding of the few types a City record and the metadata use. */
function encode(v: Value): Buffer {
  const ctrl = (type: number, size: number): Buffer => {
    const head = size < 29 ? [size] : [29, size - 29];
    if (type <= 7) return Buffer.from([(type << 5) | (head[0] as number), ...head.slice(1)]);
    return Buffer.from([head[0] as number, type - 7, ...head.slice(1)]);
  };
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([ctrl(2, b.length), b]);
  }
  if (typeof v === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return Buffer.concat([ctrl(3, 8), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([ctrl(11, v.length), ...v.map(encode)]);
  if ('uint' in v && typeof v.uint === 'number') {
    const bytes: number[] = [];
    for (let x = v.uint; x > 0; x = Math.floor(x / 256)) bytes.unshift(x % 256);
    return Buffer.concat([ctrl(v.bits === 16 ? 5 : v.bits === 32 ? 6 : 9, bytes.length), Buffer.from(bytes)]);
  }
  const entries = Object.entries(v as Record<string, Value>);
  return Buffer.concat([ctrl(7, entries.length), ...entries.flatMap(([k, x]) => [encode(k), encode(x)])]);
}

interface Leaf {
  data: number;
}
type Slot = number | Leaf | null; // node index, data, or empty

/** An IPv6 City mmdb (record size 24) of `networks` (bits of the address, prefix length, record). */
function writeMmdb(networks: { bits: number[]; record: Value }[], aliases: { bits: number[]; toBits: number[] }[]): Buffer {
  const nodes: [Slot, Slot][] = [[null, null]];
  const data: Buffer[] = [];
  let dataSize = 0;
  const dataOffsets = new Map<string, number>();
  for (const { bits, record } of networks) {
    const enc = encode(record);
    let off = dataOffsets.get(enc.toString('hex'));
    if (off === undefined) {
      off = dataSize;
      dataOffsets.set(enc.toString('hex'), off);
      data.push(enc);
      dataSize += enc.length;
    }
    let n = 0;
    for (let d = 0; d < bits.length; d++) {
      const side = bits[d] as 0 | 1;
      if (d === bits.length - 1) {
        nodes[n]![side] = { data: off };
        break;
      }
      let next = nodes[n]![side] as Slot;
      if (typeof next !== 'number') {
        // split a broader network (or empty) into a node whose children both inherit it
        nodes.push([next, next]);
        next = nodes.length - 1;
        nodes[n]![side] = next;
      }
      n = next;
    }
  }
  /** the node at the end of `bits`, made (as empty) where missing */
  const nodeAt = (bits: number[]): number =>
    bits.reduce((n, b) => {
      const side = b as 0 | 1;
      const next = nodes[n]![side];
      if (typeof next === 'number') return next;
      nodes.push([next ?? null, next ?? null]);
      nodes[n]![side] = nodes.length - 1;
      return nodes.length - 1;
    }, 0);
  for (const a of aliases) {
    const parent = nodeAt(a.bits.slice(0, -1));
    nodes[parent]![a.bits.at(-1) as 0 | 1] = nodeAt(a.toBits);
  }
  const count = nodes.length;
  const tree = Buffer.alloc(count * 6);
  nodes.forEach(([l, r], i) => {
    const val = (s: Slot): number => (s === null ? count : typeof s === 'number' ? s : count + 16 + s.data);
    tree.writeUIntBE(val(l), i * 6, 3);
    tree.writeUIntBE(val(r), i * 6 + 3, 3);
  });
  const metadata = encode({
    node_count: { uint: count, bits: 32 },
    record_size: { uint: 24, bits: 16 },
    ip_version: { uint: 6, bits: 16 },
    database_type: 'GeoLite2-City',
    languages: ['en'],
    binary_format_major_version: { uint: 2, bits: 16 },
    binary_format_minor_version: { uint: 0, bits: 16 },
    build_epoch: { uint: 1_700_000_000, bits: 64 },
    description: { en: 'tracklane test city db' },
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('\xab\xcd\xefMaxMind.com', 'latin1'), metadata]);
}

function bitsOf6(ip: string, prefix: number): number[] {
  const g = new Uint16Array(8);
  if (!parseIpv6(ip, g)) throw new Error(ip);
  return Array.from({ length: prefix }, (_, i) => ((g[i >> 4] as number) >> (15 - (i & 15))) & 1);
}

function bitsOf4(ip: string, prefix: number): number[] {
  const v = parseIpv4(ip);
  return [...new Array<number>(96).fill(0), ...Array.from({ length: prefix }, (_, i) => (v >>> (31 - i)) & 1)];
}

function city(name: string, cc: string, lat: number, lon: number, tz: string, region?: string): Value {
  return {
    city: { names: { en: name, de: `${name}-de` } },
    country: { iso_code: cc, names: { en: cc } },
    ...(region ? { subdivisions: [{ iso_code: 'X', names: { en: region } }, { names: { en: 'second' } }] } : {}),
    location: { latitude: lat, longitude: lon, time_zone: tz, accuracy_radius: { uint: 50, bits: 16 } },
  };
}

const NETWORKS: { bits: number[]; record: Value }[] = [
  { bits: bitsOf4('81.2.64.0', 18), record: city('London', 'GB', 51.5142, -0.0931, 'Europe/London', 'England') },
  { bits: bitsOf4('81.2.69.160', 27), record: city('Boxford', 'GB', 51.75, -1.25, 'Europe/London', 'England') },
  { bits: bitsOf4('81.2.69.192', 28), record: city('London', 'GB', 51.5142, -0.0931, 'Europe/London', 'England') },
  { bits: bitsOf4('89.160.20.112', 28), record: city('Linköping', 'SE', 58.4167, 15.6167, 'Europe/Stockholm') },
  { bits: bitsOf4('175.16.199.0', 24), record: { registered_country: { iso_code: 'CN' } } },
  { bits: bitsOf4('202.196.224.0', 20), record: {} }, // a record that normalises to nothing
  { bits: bitsOf4('1.128.0.0', 11), record: city('Sydney', 'AU', -33.8688, 151.209, 'Australia/Sydney', 'New South Wales') },
  { bits: bitsOf6('2001:218::', 32), record: city('Tokyo', 'JP', 35.685, 139.7514, 'Asia/Tokyo') },
  { bits: bitsOf6('2001:480:10::', 48), record: city('San Diego', 'US', 32.7, -117.2, 'America/Los_Angeles', 'California') },
  { bits: bitsOf6('2a02:cf40::', 29), record: city('Oslo', 'NO', 59.9, 10.7, 'Europe/Oslo') },
  // longer than /64, inside a broader network: the compact tables need the full 128 bits here
  { bits: bitsOf6('2a02:cf40:0:1:8000::', 65), record: city('Bergen', 'NO', 60.39, 5.32, 'Europe/Oslo') },
  { bits: bitsOf6('2a02:cf40:0:1:8000:0:7000:0', 100), record: city('Tromsø', 'NO', 69.65, 18.96, 'Europe/Oslo') },
  { bits: bitsOf6('2c0f:ff00::', 26), record: { country: { iso_code: 'ZA' } } },
];
// GeoLite2 aliases 6to4 (2002::/16) onto the IPv4 subtree at ::/96
const ALIASES = [{ bits: bitsOf6('2002::', 16), toBits: new Array<number>(96).fill(0) }];

function edges6(bits: number[]): string[] {
  let x = 0n;
  for (let i = 0; i < 128; i++) x = (x << 1n) | BigInt(bits[i] ?? 0);
  const size = 1n << BigInt(128 - bits.length);
  const out = [x, x + size - 1n, x - 1n, x + size, x + size / 2n].filter((y) => y >= 0n && y < 1n << 128n);
  return out.map((y) => formatIpv6(Array.from({ length: 8 }, (_, i) => Number((y >> BigInt(16 * (7 - i))) & 0xffffn))));
}

/** how an address in the ::/96 IPv4 part is asked for: as a dotted quad */
function asQuery(ip: string): string {
  const g = new Uint16Array(8);
  parseIpv6(ip, g);
  if (g.slice(0, 6).every((x) => x === 0)) return `${(g[6] as number) >> 8}.${(g[6] as number) & 255}.${(g[7] as number) >> 8}.${(g[7] as number) & 255}`;
  return ip;
}

describe('compact form of a GeoLite2-shaped City file', () => {
  let dir: string;
  let file: string;
  let compact: OpenGeoLookup;
  let whole: OpenGeoLookup;
  let combined: OpenGeoLookup;
  let combinedWhole: OpenGeoLookup;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'geo-geoip2-test-'));
    file = join(dir, 'GeoLite2-City-test.mmdb');
    writeFileSync(file, writeMmdb(NETWORKS, ALIASES));
    const both = [defaultGeoPaths()[0] as string, file];
    [compact, whole, combined, combinedWhole] = await Promise.all([
      openGeoLookup({ paths: [file], cacheDirs: [dir], cacheSize: 10 }),
      openGeoLookup({ paths: [file], cacheDirs: null, cacheSize: 10 }),
      openGeoLookup({ paths: both, cacheDirs: [dir], cacheSize: 10 }),
      openGeoLookup({ paths: both, cacheDirs: null, cacheSize: 10 }),
    ]);
  }, 120_000);
  afterAll(() => {
    compact.close();
    combined.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('maxmind reads the written file as intended', () => {
    expect(whole.lookup('81.2.69.170')).toEqual({ country: 'GB', region: 'England', city: 'Boxford', lat: 51.75, lon: -1.25, timezone: 'Europe/London' });
    expect(whole.lookup('2a02:cf40:0:1:8000:0:7000:1')?.city).toBe('Tromsø');
    expect(whole.lookup('2002:5102:45a1::1')?.city).toBe('Boxford'); // 6to4 of 81.2.69.161
    expect(whole.lookup('175.16.199.1')?.country).toBe('CN');
    expect(whole.lookup('202.196.224.1')).toBeNull();
  });

  it('answers every network edge exactly as maxmind does', () => {
    let n = 0;
    const ips = [...NETWORKS.flatMap((x) => edges6(x.bits)), ...edges6(bitsOf6('2002:5102:45a0::', 44)), ...edges6(bitsOf6('2002:5102:4000::', 34))];
    for (const ip of ips.map(asQuery)) {
      expect(compact.lookup(ip), ip).toEqual(whole.lookup(ip));
      expect(combined.lookup(ip), `${ip} (with DB-IP IPv4 first)`).toEqual(combinedWhole.lookup(ip));
      n++;
    }
    expect(n).toBeGreaterThan(60);
  });
});
