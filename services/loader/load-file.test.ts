import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../libs/config/env.js';
import { formatOf, loadFileSize, openLoadFile } from './load-file.js';
import type { LoadLine } from './load-row.js';

const dir = mkdtempSync(join(tmpdir(), 'tracklane-load-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('formatOf', () => {
  it.each([
    ['users.csv', undefined, 'csv'],
    ['USERS.CSV', undefined, 'csv'],
    ['users.jsonl', undefined, 'jsonl'],
    ['users.ndjson', undefined, 'jsonl'],
    ['users.txt', 'csv', 'csv'],
    ['users.csv', 'JSONL', 'jsonl'],
    ['users', 'ndjson', 'jsonl'],
  ])('%s with --format %s → %s', (path, explicit, expected) => {
    expect(formatOf(path, explicit)).toBe(expected);
  });

  it.each([
    ['users.txt', undefined, 'pass --format csv|jsonl'],
    ['users.csv', 'xml', 'unknown --format "xml"'],
  ])('refuses %s with --format %s', (path, explicit, message) => {
    expect(() => formatOf(path, explicit)).toThrow(ConfigError);
    expect(() => formatOf(path, explicit)).toThrow(message);
  });
});

describe('opening a file', () => {
  it('streams its lines and counts the bytes read', async () => {
    const path = join(dir, 'ok.csv');
    writeFileSync(path, 'id,email\nu1,a\nu2,b\n');
    expect(await loadFileSize(path)).toBe(19);
    const source = await openLoadFile(path, 'csv', 'user');
    const lines: LoadLine[] = [];
    for await (const l of source.lines) lines.push(l);
    expect(lines.map((l) => l.line)).toEqual([2, 3]);
    expect(source.bytesRead()).toBe(19);
  });

  it('reads JSONL', async () => {
    const path = join(dir, 'ok.jsonl');
    writeFileSync(path, '{"userId":"u1","email":"a"}\n');
    const lines: LoadLine[] = [];
    for await (const l of (await openLoadFile(path, 'jsonl', 'user')).lines) lines.push(l);
    expect(lines).toEqual([{ kind: 'row', line: 1, id: 'u1', set: { email: 'a' } }]);
  });

  it.each([
    ['a missing file', () => join(dir, 'nope.csv'), 'file not found'],
    ['a directory', () => dir, 'is not a file'],
  ])('refuses %s', async (_what, path, message) => {
    await expect(loadFileSize(path())).rejects.toThrow(message);
    await expect(loadFileSize(path())).rejects.toBeInstanceOf(ConfigError);
  });
});
