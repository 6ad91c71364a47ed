// Fast IP parsing, classification (public vs. private/reserved) and masking for the enricher.
// Hand-rolled over strings and integers: this runs once per event, so no URL/BlockList objects.

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  /** the address as stored under the `full` policy: trimmed; IPv4-mapped IPv6 becomes dotted IPv4 */
  readonly address: string;
  /** IPv4 /24 (last octet zeroed) or IPv6 /48, canonical compressed form */
  readonly masked: string;
  /** false for private, loopback, link-local, CGNAT, multicast, unique-local, documentation, reserved */
  readonly isPublic: boolean;
}

/** Dotted-quad → uint32, or -1 when not a strict IPv4 literal (no leading zeros, 0..255). */
export function parseIpv4(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let leadingZero = false;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 0) leadingZero = c === 48;
      else if (leadingZero) return -1;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/**
 * Parses an IPv6 literal into 8 16-bit groups written to `out`. Accepts `::` compression and
 * a trailing dotted IPv4. Rejects zone ids (`%eth0`): they only exist for link-local addresses.
 */
export function parseIpv6(s: string, out: Uint16Array | number[]): boolean {
  const len = s.length;
  if (len < 2 || len > 45) return false;
  let group = 0;
  let digits = 0;
  let n = 0; // groups written before '::' (or in total when no '::')
  let gap = -1; // index in `out` where '::' sits
  let i = 0;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (len === 2) {
      for (let k = 0; k < 8; k++) out[k] = 0;
      return true;
    }
  }
  const groupStart = i;
  let lastGroupStart = groupStart;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    let v: number;
    if (c >= 48 && c <= 57) v = c - 48;
    else if (c >= 97 && c <= 102) v = c - 87;
    else if (c >= 65 && c <= 70) v = c - 55;
    else if (c === 58 /* : */) {
      if (digits === 0) {
        // '::' in the middle or at the end
        if (gap !== -1 || i === groupStart) return false;
        if (s.charCodeAt(i - 1) !== 58) return false;
        gap = n;
        lastGroupStart = i + 1;
        continue;
      }
      if (n >= 8) return false;
      out[n++] = group;
      group = 0;
      digits = 0;
      lastGroupStart = i + 1;
      // a single trailing ':' is invalid
      if (i === len - 1) return false;
      continue;
    } else if (c === 46 /* . */) {
      // embedded IPv4 in the last 32 bits
      const v4 = parseIpv4(s.slice(lastGroupStart));
      if (v4 < 0 || n > 6) return false;
      out[n++] = v4 >>> 16;
      out[n++] = v4 & 0xffff;
      digits = 0;
      i = len;
      break;
    } else return false;
    if (++digits > 4) return false;
    group = group * 16 + v;
  }
  if (digits > 0) {
    if (n >= 8) return false;
    out[n++] = group;
  }
  if (gap === -1) return n === 8;
  if (n >= 8) return false;
  // shift the groups after '::' to the end and zero-fill the gap
  const tail = n - gap;
  for (let k = 0; k < tail; k++) out[7 - k] = out[n - 1 - k] as number;
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

/** Public unicast per IANA special-purpose registries (RFC 6890 and successors). */
export function isPublicIpv4(v: number): boolean {
  const a = v >>> 24;
  const b = (v >>> 16) & 0xff;
  const c = (v >>> 8) & 0xff;
  switch (a) {
    case 0: // "this network"
    case 10: // private
    case 127: // loopback
      return false;
    case 100:
      return !(b >= 64 && b <= 127); // CGNAT 100.64/10
    case 169:
      return b !== 254; // link-local
    case 172:
      return !(b >= 16 && b <= 31); // private 172.16/12
    case 192:
      if (b === 168) return false; // private
      if (b === 0 && (c === 0 || c === 2)) return false; // IETF protocol assignments, TEST-NET-1
      if (b === 88 && c === 99) return false; // deprecated 6to4 relay anycast
      return true;
    case 198:
      if (b === 18 || b === 19) return false; // benchmarking 198.18/15
      return !(b === 51 && c === 100); // TEST-NET-2
    case 203:
      return !(b === 0 && c === 113); // TEST-NET-3
    default:
      return a < 224; // 224/4 multicast, 240/4 reserved + broadcast
  }
}

/**
 * Public unicast IPv6: inside 2000::/3 and not documentation (2001:db8::/32, 3fff::/20) nor the
 * IETF protocol block 2001::/23 (Teredo, benchmarking, ORCHID).
 * NOTE: everything outside 2000::/3 is not public: ULA fc00::/7, link-local fe80::/10, multicast
 * ff00::/8, loopback, unspecified, discard, and NAT64 64:ff9b::/96 (its embedded IPv4 is not resolved).
 */
export function isPublicIpv6(g: Uint16Array | readonly number[]): boolean {
  const g0 = g[0] as number;
  const g1 = g[1] as number;
  if ((g0 & 0xe000) !== 0x2000) return false;
  if (g0 === 0x2001 && (g1 === 0x0db8 || g1 < 0x0200)) return false;
  if (g0 === 0x3fff && g1 < 0x1000) return false;
  return true;
}

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** RFC 5952 text form: lowercase, no leading zeros, longest (leftmost) run of ≥2 zero groups as `::`. */
export function formatIpv6(g: Uint16Array | readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += (g[i] as number).toString(16);
  }
  return out;
}

// NOTE: module-level scratch buffer; parse functions are synchronous so it is never shared.
const scratch = new Uint16Array(8);

function fromIpv4(address: string, v: number): ParsedIp {
  return {
    family: 4,
    address,
    masked: formatIpv4((v & 0xffffff00) >>> 0),
    isPublic: isPublicIpv4(v),
  };
}

/** Parses and classifies an IP literal; null for anything that is not one (garbage, hostnames, zone ids). */
export function parseIp(input: string): ParsedIp | null {
  const padded = input.length > 0 && (input.charCodeAt(0) <= 32 || input.charCodeAt(input.length - 1) <= 32);
  const s = padded ? input.trim() : input;
  if (s.indexOf(':') === -1) {
    const v = parseIpv4(s);
    return v < 0 ? null : fromIpv4(s, v);
  }
  const g = scratch;
  if (!parseIpv6(s, g)) return null;
  // TRICKY: IPv4-mapped (::ffff:a.b.c.d) is an IPv4 client seen through a dual-stack socket.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    const v = (((g[6] as number) << 16) | (g[7] as number)) >>> 0;
    return fromIpv4(formatIpv4(v), v);
  }
  const isPublic = isPublicIpv6(g);
  g[3] = 0;
  g[4] = 0;
  g[5] = 0;
  g[6] = 0;
  g[7] = 0;
  return { family: 6, address: s, masked: formatIpv6(g), isPublic };
}

/** Masked form of an IP (IPv4 /24, IPv6 /48), or null when the input is not an IP. */
export function maskIp(input: string): string | null {
  return parseIp(input)?.masked ?? null;
}

export function isPublicIp(input: string): boolean {
  return parseIp(input)?.isPublic ?? false;
}
