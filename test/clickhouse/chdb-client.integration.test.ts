// What chDB allows per process and per data dir, and the errors createClickHouse turns
// that into (libs/clickhouse/client.ts).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ChdbOpenError, createClickHouse, toNumber } from '../../libs/clickhouse/client.js';
import { queryRows } from '../support/chdb.js';

const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tracklane-chdb-client-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

describe('createClickHouse on chDB', () => {
  it('runs SQL; 64-bit counts come back as numbers that toNumber accepts', async () => {
    const c = createClickHouse({ dataDir: freshDir() });
    const [row] = await queryRows<{ n: unknown; v: string }>(c, 'SELECT count() AS n, version() AS v FROM numbers(3)');
    expect(toNumber(row?.n)).toBe(3);
    expect(row?.v).toMatch(/^2[4-9]\./);
    await c.close();
    await c.close(); // idempotent
  });

  it('creates a missing data dir', async () => {
    const dir = join(freshDir(), 'nested', 'clickhouse');
    const c = createClickHouse({ dataDir: dir });
    expect((await queryRows(c, 'SELECT 1 AS x'))[0]).toEqual({ x: 1 });
    await c.close();
  });

  it('a second client on the same dir shares the engine', async () => {
    const dir = freshDir();
    const a = createClickHouse({ dataDir: dir });
    const b = createClickHouse({ dataDir: dir });
    await a.command({ query: 'CREATE TABLE shared_t (x UInt8) ENGINE = MergeTree ORDER BY x' });
    await a.insert({ table: 'shared_t', values: [[1]], format: 'JSONCompactEachRow' });
    const [row] = await queryRows<{ n: unknown }>(b, 'SELECT count() AS n FROM shared_t');
    expect(toNumber(row?.n)).toBe(1);
    await a.close();
    // b still works after a closed
    expect((await queryRows(b, 'SELECT 1 AS x')).length).toBe(1);
    await b.close();
  });

  it('refuses a different dir while one is open, with a clear error; allows it after close', async () => {
    const first = freshDir();
    const second = freshDir();
    const a = createClickHouse({ dataDir: first });
    await queryRows(a, 'SELECT 1');
    let err: unknown;
    try {
      createClickHouse({ dataDir: second });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ChdbOpenError);
    expect((err as Error).message).toContain(second);
    expect((err as Error).message).toContain(first);
    expect((err as Error).message).toMatch(/one engine per process/);
    await a.close();

    const b = createClickHouse({ dataDir: second });
    expect((await queryRows(b, 'SELECT 2 AS x'))[0]).toEqual({ x: 2 });
    await b.close();
  });

  it('explains a dir locked by another process', async () => {
    const dir = freshDir();
    // a child process opens chDB on the dir and holds it until we kill it
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createClient } from '@clickhouse/client';
         import { createChdbConnection } from 'chdb/connection';
         const c = createClient({ connection: createChdbConnection({ path: ${JSON.stringify(dir)} }) });
         await c.query({ query: 'SELECT 1' });
         process.stdout.write('ready\\n');
         setInterval(() => {}, 1000);`,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      await new Promise<void>((res, rej) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) res();
        });
        child.on('exit', (code) => rej(new Error(`holder exited early (${code})`)));
      });
      let err: unknown;
      try {
        createClickHouse({ dataDir: dir });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ChdbOpenError);
      expect((err as Error).message).toContain(dir);
      expect((err as Error).message).toMatch(/in use by another process \(probably another Tracklane process, pid (\d+)\)/);
      expect((err as Error).message).toContain(`pid ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
