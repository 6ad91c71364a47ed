// Opening a Data Loader file: its format (from --format or the extension) and a stream of
// LoadLines read lazily, so a large file is never held in memory. The file can be opened again
// for a second pass (--strict validates everything before applying anything).
import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError } from '../../libs/config/env.js';
import { readCsvLines } from './csv-lines.js';
import { readJsonlLines } from './jsonl-lines.js';
import type { LoadLine, LoadSubject } from './load-row.js';

export const LOAD_FORMATS = ['csv', 'jsonl'] as const;
export type LoadFormat = (typeof LOAD_FORMATS)[number];

const EXTENSIONS: Record<string, LoadFormat> = { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl' };

export function formatOf(path: string, explicit?: string): LoadFormat {
  if (explicit !== undefined) {
    const f = explicit.trim().toLowerCase();
    if (f === 'ndjson') return 'jsonl';
    if ((LOAD_FORMATS as readonly string[]).includes(f)) return f as LoadFormat;
    throw new ConfigError(`unknown --format "${explicit}"; choose csv or jsonl`);
  }
  const fromExt = EXTENSIONS[extname(path).toLowerCase()];
  if (!fromExt) throw new ConfigError(`cannot tell the format of ${path} from its extension (.csv, .jsonl, .ndjson); pass --format csv|jsonl`);
  return fromExt;
}

export interface LoadSource {
  lines: AsyncIterable<LoadLine>;
  /** bytes of the file read so far, for the progress bar */
  bytesRead(): number;
}

/** The file's size; a readable ConfigError when it is missing, not a file or not readable. */
export async function loadFileSize(path: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ConfigError(`${path} is not a file`);
    return s.size;
  } catch (err) {
    throw fileError(path, err);
  }
}

export async function openLoadFile(path: string, format: LoadFormat, subject: LoadSubject): Promise<LoadSource> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw fileError(path, err);
  }
  // NOTE: both readers turn a read error into a rejected iteration, and close the stream.
  const stream = handle.createReadStream();
  return {
    lines: format === 'csv' ? readCsvLines(stream) : readJsonlLines(stream, subject),
    bytesRead: () => stream.bytesRead,
  };
}

function fileError(path: string, err: unknown): Error {
  if (err instanceof ConfigError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new ConfigError(`file not found: ${path}`);
  if (code === 'EACCES' || code === 'EPERM') return new ConfigError(`cannot read ${path}: permission denied`);
  if (code === 'EISDIR') return new ConfigError(`${path} is a directory, not a file`);
  return new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
}
