// Byte offset → 1-based line number for a stream as it passes through, so a CSV record can be
// reported by the line it is on. A line ends at "\r\n", "\n" or a lone "\r" (readline's rule).
// A leading UTF-8 BOM is dropped here; offsets count the bytes after it.
import { Transform, type TransformCallback } from 'node:stream';

const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Told of each line the cursor moves past: its number and whether it holds nothing. */
export type PassedLine = (line: number, empty: boolean) => void;

export class LineIndex extends Transform {
  /** bytes seen so far (after the BOM) */
  private offset = 0;
  // NOTE: for k ≥ 0, nextStarts[head + k] is where line cursorLine + k + 1 starts and
  // empties[head + k] whether line cursorLine + k is empty; entries before head are spent.
  private nextStarts: number[] = [];
  private empties: boolean[] = [];
  private head = 0;
  private cursorLine = 1;
  private lineHasContent = false;
  private pendingCr = false;
  private bomChecked = false;
  private lead: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let buf = chunk;
    if (!this.bomChecked) {
      buf = Buffer.concat([this.lead, chunk]);
      if (buf.length < BOM.length && BOM.subarray(0, buf.length).equals(buf)) {
        this.lead = buf;
        cb();
        return;
      }
      this.bomChecked = true;
      if (buf.subarray(0, BOM.length).equals(BOM)) buf = buf.subarray(BOM.length);
    }
    this.scan(buf);
    cb(null, buf);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.bomChecked && this.lead.length > 0) {
      this.bomChecked = true;
      this.scan(this.lead);
      this.push(this.lead);
    }
    // NOTE: a last line without a line end is ended here, so lineOf(Infinity) passes every line.
    if (this.pendingCr || this.lineHasContent) this.endLine(this.offset);
    cb();
  }

  /**
   * The line holding byte `offset`; `passed` hears of each line the cursor moves past.
   * TRICKY: queries must not go backwards (lines before the last answer are forgotten, so
   * memory stays bounded by what is buffered downstream).
   */
  lineOf(offset: number, passed?: PassedLine): number {
    while (this.head < this.nextStarts.length && (this.nextStarts[this.head] ?? Infinity) <= offset) this.advance(passed);
    this.compact();
    return this.cursorLine;
  }

  /** Moves past empty lines at the cursor (blank lines a parser skipped); returns the cursor's line. */
  skipEmptyLines(passed?: PassedLine): number {
    while (this.head < this.empties.length && this.empties[this.head] === true) this.advance(passed);
    this.compact();
    return this.cursorLine;
  }

  private advance(passed: PassedLine | undefined): void {
    passed?.(this.cursorLine, this.empties[this.head] === true);
    this.head++;
    this.cursorLine++;
  }

  private compact(): void {
    if (this.head < 4096) return;
    this.nextStarts = this.nextStarts.slice(this.head);
    this.empties = this.empties.slice(this.head);
    this.head = 0;
  }

  private scan(buf: Buffer): void {
    const base = this.offset;
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (this.pendingCr) {
        this.pendingCr = false;
        if (b === LF) {
          this.endLine(base + i + 1);
          continue;
        }
        this.endLine(base + i);
      }
      if (b === LF) this.endLine(base + i + 1);
      else if (b === CR) this.pendingCr = true;
      else this.lineHasContent = true;
    }
    this.offset = base + buf.length;
  }

  private endLine(nextStart: number): void {
    this.nextStarts.push(nextStart);
    this.empties.push(!this.lineHasContent);
    this.lineHasContent = false;
  }
}
