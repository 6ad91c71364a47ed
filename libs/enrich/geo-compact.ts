// Compact, file-backed form of a MaxMind-format city database: the search tree flattened into sorted
// range tables of (start, location) and the records normalised to Geo and deduplicated, read with
// positional reads so that only a small index and the string table sit in the process's memory.
// This module is the file's layout and its reader; geo-compact-writer.ts builds it.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Geo } from '../events/envelope.js';

/** Bumped whenever the file layout or the meaning of a record changes: old files are then rebuilt. */
export const GEO_COMPACT_VERSION = 1;
export const MAGIC = 'TLGEO\0\0\x01';
/** entries per block: one positional read of ≤ 5 KB per lookup */
export const BLOCK = 256;
export const V4_ENTRY = 8; // start u32, loc u32
export const V6_ENTRY = 20; // start as 4 × u32 (most significant first), loc u32
export const LOC_ENTRY = 32; // country, region, city, timezone (string ids, NONE_STR for null), lat f64, lon f64 (NaN for null)
export const NONE_STR = 0xffffffff;

export interface Section {
  offset: number;
  length: number;
}

export interface CompactHeader {
  version: number;
  v4: { count: number; entries: Section; index: Section };
  v6: { count: number; entries: Section; index: Section };
  locs: { count: number; entries: Section };
  strings: { count: number; offsets: Section; blob: Section };
}

// ── read ──────────────────────────────────────────────────────────────────────────────────────

export interface GeoCompactFile {
  /** Geo for an IPv4 address as u32, or null */
  lookup4(v: number): Geo | null;
  /** Geo for an IPv6 address as 4 × u32 (most significant first), or null; null too when the file holds no IPv6 */
  lookup6(w: ArrayLike<number>): Geo | null;
  readonly counts: { readonly v4: number; readonly v6: number; readonly locs: number };
  /** bytes held in memory (index and string table) */
  readonly residentBytes: number;
  close(): void;
}

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, offset + done);
    if (n === 0) throw new Error('geo compact file truncated');
    done += n;
  }
  return b;
}

/** Opens a compact file; throws when it is not one of this version (the caller rebuilds it). */
export function openGeoCompact(path: string): GeoCompactFile {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = readAt(fd, 0, Math.min(4096, size));
    if (head.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${path}: not a compact geo file`);
    const header = JSON.parse(head.toString('utf8', 12, 12 + head.readUInt32LE(8))) as CompactHeader;
    if (header.version !== GEO_COMPACT_VERSION) throw new Error(`${path}: compact geo version ${header.version}, want ${GEO_COMPACT_VERSION}`);
    const last = header.strings.blob;
    if (last.offset + last.length > size) throw new Error(`${path}: truncated`);
    return compactReader(fd, header);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function u32s(b: Buffer): Uint32Array {
  // NOTE: copied into an aligned array (a Buffer's offset in its pool need not be a multiple of 4).
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 4);
  return out;
}

function compactReader(fd: number, h: CompactHeader): GeoCompactFile {
  const v4Index = u32s(readAt(fd, h.v4.index.offset, h.v4.index.length));
  const v6Index = u32s(readAt(fd, h.v6.index.offset, h.v6.index.length));
  const strOffsets = u32s(readAt(fd, h.strings.offsets.offset, h.strings.offsets.length));
  const blob = readAt(fd, h.strings.blob.offset, h.strings.blob.length);
  const block = Buffer.allocUnsafe(BLOCK * V6_ENTRY);
  const loc = Buffer.allocUnsafe(LOC_ENTRY);
  const strCache = new Map<number, string>();
  let closed = false;

  const read = (into: Buffer, length: number, offset: number): void => {
    if (closed) throw new Error('geo lookup closed');
    let done = 0;
    while (done < length) {
      const n = readSync(fd, into, done, length - done, offset + done);
      if (n === 0) throw new Error('geo compact file truncated');
      done += n;
    }
  };
  const str = (id: number): string | null => {
    if (id === NONE_STR) return null;
    let s = strCache.get(id);
    if (s === undefined) {
      s = blob.toString('utf8', strOffsets[id] as number, strOffsets[id + 1] as number);
      // NOTE: countries and regions repeat; keep the few hundred most common decoded, cities are not kept
      if (strCache.size < 4096) strCache.set(id, s);
    }
    return s;
  };
  const geoAt = (i: number): Geo | null => {
    if (i === 0) return null;
    read(loc, LOC_ENTRY, h.locs.entries.offset + i * LOC_ENTRY);
    const lat = loc.readDoubleLE(16);
    const lon = loc.readDoubleLE(24);
    return Object.freeze({
      country: str(loc.readUInt32LE(0)),
      region: str(loc.readUInt32LE(4)),
      city: str(loc.readUInt32LE(8)),
      lat: Number.isNaN(lat) ? null : lat,
      lon: Number.isNaN(lon) ? null : lon,
      timezone: str(loc.readUInt32LE(12)),
    });
  };
  /** compares the 4-word key at b[off] with w: <0, 0, >0 */
  const cmp6 = (src: Uint32Array | Buffer, at: number, w: ArrayLike<number>, fromBuffer: boolean): number => {
    for (let k = 0; k < 4; k++) {
      const a = fromBuffer ? (src as Buffer).readUInt32LE(at + k * 4) : ((src as Uint32Array)[at + k] as number);
      const b = w[k] as number;
      if (a !== b) return a < b ? -1 : 1;
    }
    return 0;
  };

  return {
    counts: { v4: h.v4.count, v6: h.v6.count, locs: h.locs.count - 1 },
    residentBytes: v4Index.byteLength + v6Index.byteLength + strOffsets.byteLength + blob.length,
    lookup4(v) {
      if (h.v4.count === 0) return null;
      // last block whose first start ≤ v (the first start is 0: the table covers the whole space)
      const first = lastAtMost(v4Index.length, (m) => (v4Index[m] as number) <= v) * BLOCK;
      const n = Math.min(BLOCK, h.v4.count - first);
      read(block, n * V4_ENTRY, h.v4.entries.offset + first * V4_ENTRY);
      const a = lastAtMost(n, (m) => block.readUInt32LE(m * V4_ENTRY) <= v);
      return geoAt(block.readUInt32LE(a * V4_ENTRY + 4));
    },
    lookup6(w) {
      if (h.v6.count === 0) return null;
      const first = lastAtMost(v6Index.length / 4, (m) => cmp6(v6Index, m * 4, w, false) <= 0) * BLOCK;
      const n = Math.min(BLOCK, h.v6.count - first);
      read(block, n * V6_ENTRY, h.v6.entries.offset + first * V6_ENTRY);
      const a = lastAtMost(n, (m) => cmp6(block, m * V6_ENTRY, w, true) <= 0);
      return geoAt(block.readUInt32LE(a * V6_ENTRY + 16));
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

/** The last index in [0, n) for which `atMost` holds, given it holds for index 0 and is monotone (true … false). */
function lastAtMost(n: number, atMost: (i: number) => boolean): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const m = (lo + hi + 1) >>> 1;
    if (atMost(m)) lo = m;
    else hi = m - 1;
  }
  return lo;
}
