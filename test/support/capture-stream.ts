// A writable stream that keeps what is written to it: stands in for stdout/stderr in tests of
// progress output (isTTY picks the terminal or the plain-line mode).
import { Writable } from 'node:stream';

export class CaptureStream extends Writable {
  text = '';
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}
