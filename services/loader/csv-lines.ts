// CSV Data Loader files: the header row names the columns (the first is the id, its name is
// free; the others are attribute names); each later record becomes one LoadLine. An empty
// cell leaves its attribute unchanged, so a CSV cannot clear an attribute (use JSONL + null).
import type { Readable } from 'node:stream';
import { parse, type CsvError, type Options } from 'csv-parse';
import { ConfigError } from '../../libs/config/env.js';
import { LIMITS } from '../../libs/events/envelope.js';
import { LineIndex } from './line-index.js';
import { checkRow, quoteName, type LoadLine } from './load-row.js';

/**
 * Guard against an unclosed quote swallowing the file: the largest valid record (every
 * attribute at its longest, 4 bytes a character) with room to spare.
 */
const MAX_RECORD_BYTES = (LIMITS.mapEntries + 1) * LIMITS.mapValueChars * 4 + 1024 * 1024;

/** Why csv-parse skipped a record. TRICKY: never its message: it quotes the field's value. */
const CSV_ERROR_REASONS: Record<string, string> = {
  CSV_INVALID_CLOSING_QUOTE: 'malformed CSV: a closing quote is followed by something other than a comma or a line end',
  INVALID_OPENING_QUOTE: 'malformed CSV: a quote inside an unquoted field (quote the field and double the quote)',
  CSV_QUOTE_NOT_CLOSED: 'malformed CSV: a quote opened here is never closed',
  CSV_MAX_RECORD_SIZE: `malformed CSV: record longer than ${MAX_RECORD_BYTES} bytes (an unclosed quote?)`,
};

interface ParsedRecord {
  fields: string[];
  line: number;
}

interface Header {
  /** attribute names of columns 2.. (trimmed) */
  names: string[];
}

/** Line breaks inside a quoted field: the record starts that many lines before it ends. */
function lineBreaks(field: string): number {
  if (!field.includes('\n') && !field.includes('\r')) return 0;
  return field.match(/\r\n|\r|\n/g)?.length ?? 0;
}

function readHeader(record: ParsedRecord): Header {
  const [, ...rest] = record.fields;
  const at = `line ${record.line} (the header)`;
  if (rest.length === 0) throw new ConfigError(`${at}: needs the id column and at least one attribute column`);
  const names = rest.map((n) => n.trim());
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (name.length === 0) throw new ConfigError(`${at}: column ${i + 2} has no name`);
    if (name.length > LIMITS.mapKeyChars) throw new ConfigError(`${at}: column ${i + 2} has a name longer than ${LIMITS.mapKeyChars} characters`);
    if (seen.has(name)) throw new ConfigError(`${at}: column ${quoteName(name)} appears twice`);
    seen.add(name);
  });
  return { names };
}

function toLoadLine(record: ParsedRecord, header: Header): LoadLine {
  const { fields, line } = record;
  if (fields.length !== header.names.length + 1) {
    return { kind: 'bad', line, reason: `${fields.length} fields, the header has ${header.names.length + 1}` };
  }
  const entries: [string, string][] = [];
  header.names.forEach((name, i) => {
    const cell = fields[i + 1] ?? '';
    // NOTE: a blank cell (only spaces) counts as empty too: it leaves the attribute unchanged.
    if (cell.trim() !== '') entries.push([name, cell]);
  });
  return checkRow(line, fields[0] ?? '', entries, 'column');
}

/**
 * Turns the parser's records and skips into line numbers, and makes sure every non-empty line
 * is accounted for. TRICKY: after a bad quote csv-parse stays in quoted mode, so the lines up
 * to the next quote become part of the bad record (and it may report that record again at
 * each later quote); such swallowed lines are reported too, never silently dropped.
 */
class LineAccounting {
  /** bad lines and records in parse order; a sequence number each */
  private seq = 0;
  readonly bad: { seq: number; line: number; reason: string }[] = [];
  private accountedThrough = 0;
  private lastBad = 0;
  private unaccounted: number[] = [];
  private readonly passed = (line: number, empty: boolean): void => {
    if (!empty && line > this.accountedThrough) this.unaccounted.push(line);
  };

  constructor(private readonly index: LineIndex) {}

  /** A record that ends just before byte `endBytes`: its first line and its sequence number. */
  record(fields: readonly string[], endBytes: number): { seq: number; line: number } {
    const endLine = this.index.lineOf(Math.max(0, endBytes - 1), this.passed);
    const line = endLine - fields.reduce((n, f) => n + lineBreaks(f), 0);
    this.reportSwallowed(line, this.lastBad);
    this.accountedThrough = endLine;
    return { seq: this.seq++, line };
  }

  /** A record the parser skipped, detected at byte `atBytes`. */
  skip(atBytes: number, reason: string): void {
    this.index.lineOf(atBytes, this.passed);
    const line = this.index.skipEmptyLines(this.passed);
    this.reportSwallowed(line, this.lastBad || line);
    if (line === this.lastBad) return;
    this.bad.push({ seq: this.seq++, line, reason });
    this.lastBad = line;
    this.accountedThrough = line;
  }

  /** At the end of the file: lines after the last record that nothing accounted for. */
  end(): void {
    this.index.lineOf(Infinity, this.passed);
    this.reportSwallowed(Infinity, this.lastBad);
  }

  private reportSwallowed(before: number, badLine: number): void {
    const reason = badLine > 0 ? `malformed CSV: read as part of the bad record at line ${badLine}, not applied` : 'malformed CSV: not part of any record';
    for (const line of this.unaccounted) if (line < before) this.bad.push({ seq: this.seq++, line, reason });
    this.unaccounted = [];
  }
}

/**
 * Streams a CSV file as LoadLines in file order. Throws ConfigError when the header row is
 * unusable (nothing after it could be read). Line numbers are the line a record starts on.
 */
export async function* readCsvLines(input: Readable): AsyncGenerator<LoadLine> {
  const index = new LineIndex();
  // NOTE: skips are reported through a callback while records flow through the stream; both
  // run synchronously in parse order, so a sequence number restores that order.
  const lines = new LineAccounting(index);
  // NOTE: each record's place (sequence number, line) is queued as the parser reads it and taken
  // back as the record comes out of the stream: records leave in the order they were read.
  const places: { seq: number; line: number }[] = [];
  const options: Options = {
    record_delimiter: ['\r\n', '\n', '\r'],
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_RECORD_BYTES,
    // TRICKY: csv-parse's own line count is off for "\r\n" inside quoted fields; its byte
    // offsets are right, so lines come from our index. `bytes` is just past the record's end.
    on_record: (fields, ctx) => {
      places.push(lines.record(fields, ctx.bytes));
      return fields;
    },
    on_skip: (err: CsvError | undefined) => {
      const code = err?.code ?? '';
      lines.skip(typeof err?.bytes === 'number' ? err.bytes : 0, CSV_ERROR_REASONS[code] ?? `malformed CSV (${code || 'unknown error'})`);
      return undefined;
    },
  };
  const parser = parse(options);
  input.on('error', (err) => parser.destroy(err));
  index.on('error', (err) => parser.destroy(err));
  input.pipe(index).pipe(parser);

  let header: Header | undefined;
  const drainBad = function* (before: number): Generator<LoadLine> {
    while ((lines.bad[0]?.seq ?? Infinity) < before) {
      const b = lines.bad.shift();
      if (!b) break;
      if (!header) throw new ConfigError(`line ${b.line} (the header): ${b.reason}`);
      yield { kind: 'bad', line: b.line, reason: b.reason };
    }
  };
  try {
    for await (const fields of parser as AsyncIterable<string[]>) {
      const place = places.shift();
      if (!place) throw new Error('csv-lines: a record came out of the parser that on_record did not see');
      const record = { fields, line: place.line };
      yield* drainBad(place.seq);
      if (!header) {
        header = readHeader(record);
        continue;
      }
      yield toLoadLine(record, header);
    }
    lines.end();
    if (!header && lines.bad.length === 0) throw new ConfigError('the file is empty: a CSV needs a header row');
    yield* drainBad(Infinity);
  } finally {
    // NOTE: a consumer that stops early (or a bad header) must not leave the file open.
    input.destroy();
  }
}
