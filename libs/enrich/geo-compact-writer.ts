// Builds the compact geo file (layout and reader: geo-compact.ts) from a MaxMind-format city
// database. Runs where the whole mmdb may be held in memory: a child process (geo-compact-cache.ts).
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Reader, Response } from 'maxmind';
import type { Geo } from '../events/envelope.js';
import { BLOCK, GEO_COMPACT_VERSION, LOC_ENTRY, MAGIC, NONE_STR, V4_ENTRY, V6_ENTRY, type CompactHeader, type Section } from './geo-compact.js';
import { formatIpv4, formatIpv6 } from './ip-address.js';

/** A growable little-endian byte buffer. */
class Bytes {
  buf = Buffer.allocUnsafe(1 << 20);
  length = 0;
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, this.length);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }
  bytes(b: Buffer): void {
    this.reserve(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function nodeReader(db: Buffer, recordSize: number): { left(n: number): number; right(n: number): number } {
  switch (recordSize) {
    case 24:
      return { left: (n) => db.readUIntBE(n * 6, 3), right: (n) => db.readUIntBE(n * 6 + 3, 3) };
    case 28:
      return {
        left: (n) => (((db[n * 7 + 3] as number) & 0xf0) << 20) | db.readUIntBE(n * 7, 3),
        right: (n) => (((db[n * 7 + 3] as number) & 0x0f) << 24) | db.readUIntBE(n * 7 + 4, 3),
      };
    case 32:
      return { left: (n) => db.readUInt32BE(n * 8), right: (n) => db.readUInt32BE(n * 8 + 4) };
    default:
      throw new Error(`unsupported mmdb record size ${recordSize}`);
  }
}

/**
 * Writes the compact form of `reader` (opened on `db`) to `outPath`, atomically (temp file, rename).
 * Every distinct tree leaf is resolved once through the reader's public `get()` at the first address
 * it covers and normalised with `normalize`, so the tables answer exactly what `get()` + `normalize` do.
 */
export function buildGeoCompact(db: Buffer, reader: Reader<Response>, normalize: (record: unknown) => Geo | null, outPath: string): { v4: number; v6: number; locs: number } {
  const { nodeCount, recordSize, ipVersion } = reader.metadata;
  const node = nodeReader(db, recordSize);
  const strings = new Map<string, number>();
  const stringList: string[] = [];
  const locs = new Bytes();
  const locByKey = new Map<string, number>();
  let locCount = 1; // 0 = no geo
  for (let i = 0; i < LOC_ENTRY / 4; i++) locs.u32(0);

  const sid = (s: string | null): number => {
    if (s === null) return NONE_STR;
    let i = strings.get(s);
    if (i === undefined) {
      i = stringList.length;
      stringList.push(s);
      strings.set(s, i);
    }
    return i;
  };
  const locOf = (geo: Geo | null): number => {
    if (geo === null) return 0;
    const key = JSON.stringify([geo.country, geo.region, geo.city, geo.timezone, geo.lat, geo.lon]);
    let i = locByKey.get(key);
    if (i === undefined) {
      i = locCount++;
      locByKey.set(key, i);
      locs.u32(sid(geo.country));
      locs.u32(sid(geo.region));
      locs.u32(sid(geo.city));
      locs.u32(sid(geo.timezone));
      locs.f64(geo.lat ?? Number.NaN);
      locs.f64(geo.lon ?? Number.NaN);
    }
    return i;
  };

  /**
   * Depth-first, left first, over the subtree at `root` for `bits`-bit addresses: leaves come out in
   * address order and cover the whole space, so a table of starts (ends implied) is exact. `start`
   * holds the current leaf's first address as 4 × u32, most significant word first.
   */
  function flatten(root: number, bits: 32 | 128, emit: (start: Uint32Array, loc: number) => void): void {
    const start = new Uint32Array(4);
    const locByRecord = new Map<number, number>();
    let lastLoc = -1;
    const leaf = (record: number, depth: number): void => {
      let loc = locByRecord.get(record);
      if (loc === undefined) {
        // == nodeCount: no data; < nodeCount at full depth: a malformed tree, which mmdb-lib answers null
        if (record <= nodeCount) loc = 0;
        else loc = locOf(normalize(reader.get(bits === 32 ? formatIpv4(start[3] as number) : formatIpv6(words16(start)))));
        locByRecord.set(record, loc);
      }
      if (loc !== lastLoc) emit(start, loc);
      lastLoc = loc;
      // start += 2^(bits - depth), with carry across the words
      const bit = bits - depth;
      let word = 3 - (bit >>> 5);
      let add = 2 ** (bit & 31);
      while (word >= 0 && add > 0) {
        const sum = (start[word] as number) + add;
        start[word] = sum >>> 0;
        add = sum > 0xffffffff ? 1 : 0;
        word--;
      }
    };
    // (record, depth) pairs; a record ≥ nodeCount, or any record at full depth, is a leaf
    const stackRecord = new Float64Array(bits + 2);
    const stackDepth = new Uint8Array(bits + 2);
    let sp = 0;
    stackRecord[sp] = root;
    stackDepth[sp++] = 0;
    while (sp > 0) {
      const record = stackRecord[--sp] as number;
      const depth = stackDepth[sp] as number;
      if (record >= nodeCount || depth === bits) {
        leaf(record, depth);
        continue;
      }
      // right first, so the left subtree (lower addresses) comes out first
      stackRecord[sp] = node.right(record);
      stackDepth[sp++] = depth + 1;
      stackRecord[sp] = node.left(record);
      stackDepth[sp++] = depth + 1;
    }
  }

  const v4 = new Bytes();
  const v6 = new Bytes();
  let v4Count = 0;
  let v6Count = 0;
  // NOTE: IPv4 in an IPv6 tree is looked up from the node 96 zero bits down (as mmdb-lib does);
  // an IPv4 tree never answers IPv6 (geo-lookup.ts does not ask it).
  let v4Root = 0;
  if (ipVersion === 6) {
    for (let i = 0; i < 96 && v4Root < nodeCount; i++) v4Root = node.left(v4Root);
  }
  flatten(v4Root, 32, (start, loc) => {
    v4.u32(start[3] as number);
    v4.u32(loc);
    v4Count++;
  });
  if (ipVersion === 6) {
    flatten(0, 128, (start, loc) => {
      for (let w = 0; w < 4; w++) v6.u32(start[w] as number);
      v6.u32(loc);
      v6Count++;
    });
  }

  const strOffsets = new Bytes();
  const blob = new Bytes();
  for (const s of stringList) {
    strOffsets.u32(blob.length);
    blob.bytes(Buffer.from(s, 'utf8'));
  }
  strOffsets.u32(blob.length);

  const index = (entries: Bytes, count: number, entrySize: number, startWords: number): Bytes => {
    const out = new Bytes();
    for (let i = 0; i < count; i += BLOCK) for (let w = 0; w < startWords; w++) out.u32(entries.buf.readUInt32LE(i * entrySize + w * 4));
    return out;
  };
  const v4Index = index(v4, v4Count, V4_ENTRY, 1);
  const v6Index = index(v6, v6Count, V6_ENTRY, 4);

  const parts: Buffer[] = [v4.view(), v4Index.view(), v6.view(), v6Index.view(), locs.view(), strOffsets.view(), blob.view()];
  const headerSpace = 4096;
  const sections: Section[] = [];
  let offset = headerSpace;
  for (const p of parts) {
    sections.push({ offset, length: p.length });
    offset += p.length + ((8 - (p.length % 8)) % 8);
  }
  const s = (i: number): Section => sections[i] as Section;
  const header: CompactHeader = {
    version: GEO_COMPACT_VERSION,
    v4: { count: v4Count, entries: s(0), index: s(1) },
    v6: { count: v6Count, entries: s(2), index: s(3) },
    locs: { count: locCount, entries: s(4) },
    strings: { count: stringList.length, offsets: s(5), blob: s(6) },
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length + 12 > headerSpace) throw new Error('geo compact header too large');
  const head = Buffer.alloc(headerSpace);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);

  const tmp = `${outPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, head, 0, head.length, 0);
    parts.forEach((p, i) => writeSync(fd, p, 0, p.length, s(i).offset));
    closeSync(fd);
    renameSync(tmp, outPath);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  return { v4: v4Count, v6: v6Count, locs: locCount - 1 };
}

function words16(w: Uint32Array): number[] {
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push((w[i] as number) >>> 16, (w[i] as number) & 0xffff);
  return g;
}
