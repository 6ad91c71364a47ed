import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { LineIndex } from './line-index.js';

/** Runs text through a LineIndex in chunks of `size` bytes; returns the index and what came out. */
async function indexed(text: string | Buffer, size: number): Promise<{ index: LineIndex; out: Buffer }> {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  const index = new LineIndex();
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    index,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return { index, out: Buffer.concat(parts) };
}

const CHUNK_SIZES = [1, 2, 3, 5, 1024];

describe('LineIndex', () => {
  it.each(CHUNK_SIZES)('counts \\n, \\r\\n and a lone \\r as line ends (chunks of %i bytes)', async (size) => {
    const text = 'a\nb\r\nc\rd\r\n\re';
    const { index } = await indexed(text, size);
    // offsets of a, b, c, d, (empty line), e
    const expected: [number, number][] = [
      [0, 1],
      [2, 2],
      [5, 3],
      [7, 4],
      [10, 5],
      [11, 6],
    ];
    for (const [offset, line] of expected) expect(index.lineOf(offset)).toBe(line);
  });

  it.each(CHUNK_SIZES)('drops a leading BOM and counts offsets after it (chunks of %i bytes)', async (size) => {
    const { index, out } = await indexed('\uFEFFid\nx\n', size);
    expect(out.toString()).toBe('id\nx\n');
    expect(index.lineOf(3)).toBe(2);
  });

  it.each([
    ['the start of a BOM', Buffer.from([0xef, 0xbb])],
    ['the start of a BOM, then text', Buffer.from([0xef, 0xbb, 0x41])],
    ['short text', Buffer.from('a')],
  ])('passes %s through unchanged', async (_what, bytes) => {
    const { out } = await indexed(bytes, 1);
    expect(out).toEqual(bytes);
  });

  it('skips empty lines at the cursor', async () => {
    const { index } = await indexed('a\n\n\r\n\nb\n', 1024);
    expect(index.lineOf(2)).toBe(2);
    expect(index.skipEmptyLines()).toBe(5);
    expect(index.lineOf(6)).toBe(5);
  });

  it('answers monotonic queries over many lines', async () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `line-${i}`).join('\n');
    const { index } = await indexed(text, 4096);
    let offset = 0;
    for (let i = 0; i < 20_000; i++) {
      expect(index.lineOf(offset)).toBe(i + 1);
      offset += `line-${i}`.length + 1;
    }
  });
});
