// Writes a subject export's records to a stream as NDJSON, one record a line, waiting while
// the stream's buffer is full, so a slow reader slows the reads instead of filling memory.
import type { Writable } from 'node:stream';
import { ndjsonLine, type ExportRecord } from './subject-export.js';

/** The reader went away (a closed connection, a destroyed file stream): the export stops. */
export class ExportAbortedError extends Error {
  override readonly name = 'ExportAbortedError';
}

export function ndjsonWriter(out: Writable): (record: ExportRecord) => Promise<void> {
  return async (record) => {
    if (out.destroyed || out.writableEnded) throw new ExportAbortedError('the export stream is closed');
    if (out.write(ndjsonLine(record))) return;
    await drained(out);
  };
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(new ExportAbortedError('the export stream closed'));
    const onError = (err: Error) => settle(new ExportAbortedError(`the export stream failed: ${err.name}`));
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onError);
  });
}
