import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../libs/config/env.js';
import { LIMITS } from '../../libs/events/envelope.js';
import { readCsvLines } from './csv-lines.js';
import type { LoadLine } from './load-row.js';

async function read(text: string, chunkSize = 1 << 16): Promise<LoadLine[]> {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const out: LoadLine[] = [];
  for await (const line of readCsvLines(Readable.from(chunks))) out.push(line);
  return out;
}

/** line → kind (and reason for bad lines): what most cases assert */
const brief = (lines: LoadLine[]) => lines.map((l) => (l.kind === 'bad' ? `${l.line} bad: ${l.reason}` : `${l.line} ${l.kind}`));

describe('readCsvLines', () => {
  it('reads rows: the first column is the id, the header names the attributes', async () => {
    expect(await read('user_id,email,first_name\nu1,a@b.c,Alice\n u2 ,,Bob\n')).toEqual([
      { kind: 'row', line: 2, id: 'u1', set: { email: 'a@b.c', first_name: 'Alice' } },
      { kind: 'row', line: 3, id: 'u2', set: { first_name: 'Bob' } },
    ]);
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('numbers lines of a %s file, blank lines and multi-line quoted fields included', async (_name, nl) => {
    const text = ['id,note,email', 'u1,"two', 'lines",a', '', 'u2,x,b', `u3,"three${nl}more${nl}lines",c`, '', '', 'u4,y,d', ''].join(nl);
    const lines = await read(text);
    expect(lines.map((l) => [l.line, l.kind === 'row' ? l.id : l.kind])).toEqual([
      [2, 'u1'],
      [5, 'u2'],
      [6, 'u3'],
      [11, 'u4'],
    ]);
    expect(lines[2]).toMatchObject({ set: { note: `three${nl}more${nl}lines` } });
  });

  it.each([1, 2, 7])('gets the same lines when the file arrives in chunks of %i bytes', async (size) => {
    const text = '\uFEFFid,a\r\nu1,"x\r\ny"\r\n\r\nu2,b"q\r\nu3,é\r\n';
    expect(brief(await read(text, size))).toEqual(brief(await read(text)));
    expect(brief(await read(text, size))).toEqual(['2 row', '5 bad: malformed CSV: a quote inside an unquoted field (quote the field and double the quote)', '6 row']);
  });

  it('drops a BOM before the header', async () => {
    expect(await read('\uFEFFid,email\nu1,a\n')).toEqual([{ kind: 'row', line: 2, id: 'u1', set: { email: 'a' } }]);
  });

  it('reports bad lines and goes on', async () => {
    const text = [
      'id,email,name',
      'u1,a,b',
      'u2,a', // too few
      'u3,a,b,c', // too many
      ',a,b', // empty id
      `u4,${'x'.repeat(LIMITS.mapValueChars + 1)},b`,
      'u6,a"b,c', // quote inside an unquoted field
      'u7,,', // nothing to change
      'u8,   ,n', // a blank cell is empty too
      'u9,a,b',
    ].join('\n');
    expect(brief(await read(text))).toEqual([
      '2 row',
      '3 bad: 2 fields, the header has 3',
      '4 bad: 4 fields, the header has 3',
      '5 bad: id is empty',
      `6 bad: column "email": value longer than ${LIMITS.mapValueChars} characters`,
      '7 bad: malformed CSV: a quote inside an unquoted field (quote the field and double the quote)',
      '8 noop',
      '9 row',
      '10 row',
    ]);
  });

  // csv-parse stays in quoted mode after a bad closing quote: the lines up to the next quote
  // become part of the bad record. They are reported, never silently dropped.
  it.each([
    [
      'a bad closing quote, up to the next quote',
      'id,a,b\nu1,"a"b,c\nu2,x,y\nu3,"q",z\nu4,x,y\n',
      ['2 bad: malformed CSV: a closing quote is followed by something other than a comma or a line end', '3 swallowed by 2', '4 swallowed by 2', '5 row'],
    ],
    ['a quote never closed, to the end', 'id,a\nu1,x\nu2,"open\nu3,y\n\nu4,z', ['2 row', '3 bad: malformed CSV: a quote opened here is never closed', '4 swallowed by 3', '6 swallowed by 3']],
    [
      'a record the parser trips over repeatedly, once',
      'id,a\nu1,"x"y\n\n"b"c,d\n',
      ['2 bad: malformed CSV: a closing quote is followed by something other than a comma or a line end', '4 swallowed by 2'],
    ],
  ])('reports %s', async (_what, text, expected) => {
    const lines = brief(await read(text)).map((l) => l.replace(/bad: malformed CSV: read as part of the bad record at line (\d+), not applied/, 'swallowed by $1'));
    expect(lines).toEqual(expected);
  });

  it('never quotes a value in a reason', async () => {
    const lines = await read('id,email\nu1,"secret@x.io"oops\nu2,sec"ret\nu3,"secret\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it.each([
    ['an empty file', '', 'the file is empty'],
    ['only blank lines', '\n\n', 'the file is empty'],
    ['an id column only', 'id\nu1\n', 'line 1 (the header): needs the id column and at least one attribute column'],
    ['a column without a name', 'id,email, \nu1,a,b\n', 'line 1 (the header): column 3 has no name'],
    ['a column twice', 'id,email, email\nu1,a,b\n', 'line 1 (the header): column "email" appears twice'],
    ['a long column name', `id,${'n'.repeat(LIMITS.mapKeyChars + 1)}\n`, `line 1 (the header): column 2 has a name longer than ${LIMITS.mapKeyChars} characters`],
    ['a malformed header', '\nid,"email"x\nu1,a\n', 'line 2 (the header): malformed CSV'],
  ])('refuses %s', async (_what, text, message) => {
    const err = await read(text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
  });

  it('keeps header names trimmed and values as they are', async () => {
    expect(await read('id , email ,name\nu1, a@b.c ,"  Al "\n')).toEqual([{ kind: 'row', line: 2, id: 'u1', set: { email: ' a@b.c ', name: '  Al ' } }]);
  });
});
