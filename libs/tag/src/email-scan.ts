// The character classes and the domain scanner of the email pattern, shared by the tag's URL
// filter (url-filter.ts) and the collector's scrub (libs/enrich/url-scrub.ts), whose local-part
// rules differ. NOTE: kept in the tag's tree because the image ships the tag as source for
// esbuild (Dockerfile); plain ES only, no DOM or Node types.

export const LOCAL = 1; // [a-z0-9._+!~$'*-], case-insensitive
export const LABEL = 2; // [a-z0-9-]
export const ALPHA = 4; // [a-z]
export const HEX = 8; // [0-9a-f]
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  const alpha = /[a-z]/i.test(ch);
  const digit = ch >= '0' && ch <= '9';
  CLASS[c] =
    (alpha || digit || "._+!~$'*-".includes(ch) ? LOCAL : 0) |
    (alpha || digit || ch === '-' ? LABEL : 0) |
    (alpha ? ALPHA : 0) |
    (digit || /[a-f]/i.test(ch) ? HEX : 0);
}

/** Whether the ASCII character at i is in the classes of `flag` (false past the end). */
export function has(s: string, i: number, flag: number): boolean {
  const c = s.charCodeAt(i); // NaN past the end: `NaN < 128` is false
  return c < 128 && ((CLASS[c] as number) & flag) !== 0;
}

/** Counts the scanners' character visits (tests assert they grow linearly with the input). */
export interface ScanStats {
  steps: number;
}

/**
 * End of the domain `(?:[a-z0-9-]+\.)+[a-z]{2,63}` starting at d, or -1. Segments between dots
 * are walked once; the last one whose leading letters (≥ 2) follow at least one non-empty
 * label wins, as the greedy regex's backtracking would choose.
 */
export function domainEnd(s: string, d: number, stats: ScanStats): number {
  let best = -1;
  let labels = 0;
  let pos = d;
  for (;;) {
    let k = pos;
    while (has(s, k, ALPHA)) k++;
    if (labels > 0 && k - pos >= 2) best = pos + Math.min(k - pos, 63);
    while (has(s, k, LABEL)) k++;
    stats.steps += k - pos + 1;
    if (k === pos || s.charCodeAt(k) !== 46 /* . */) return best;
    labels++;
    pos = k + 1;
  }
}
