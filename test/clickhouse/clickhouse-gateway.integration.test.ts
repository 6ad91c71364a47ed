// The ClickHouse gateway (test/support/clickhouse-gateway.ts) driven by @clickhouse/client over
// HTTP exactly as production code uses it: formats, params, inserts, errors, settings isolation.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { startClickHouseGateway, type ClickHouseGateway } from '../support/clickhouse-gateway.js';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
let dataDir = '';
let gateway: ClickHouseGateway;
let client: ClickHouseClient;
const clients: ClickHouseClient[] = [];

function newClient(extra: Parameters<typeof createClient>[0] = {}): ClickHouseClient {
  // the client logs every failed request; these tests provoke failures on purpose
  const c = createClient({ url: gateway.url, request_timeout: 30_000, log: { level: ClickHouseLogLevel.OFF }, ...extra });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-ch-gateway-'));
  gateway = await startClickHouseGateway({ port: 0, dataDir });
  client = newClient();
  await client.command({ query: 'CREATE TABLE kv (k String, v UInt64) ENGINE = MergeTree ORDER BY k' });
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await gateway?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function rows<T>(query: string, query_params?: Record<string, unknown>, c: ClickHouseClient = client): Promise<T[]> {
  const rs = await c.query({ query, format: 'JSONEachRow', ...(query_params ? { query_params } : {}) });
  return rs.json<T>();
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** A raw HTTP exchange, for what the client does not expose (headers, status). */
function rawRequest(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(`${gateway.url}${path}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

describe('clickhouse gateway: reads', () => {
  it('answers ping, both /ping and a SELECT ping', async () => {
    expect(await client.ping()).toEqual({ success: true });
    const viaSelect = await client.ping({ select: true });
    expect(viaSelect.success).toBe(true);
  });

  it('serves the formats the client asks for', async () => {
    const q = 'SELECT number AS n, toString(number) AS s FROM numbers(2)';
    expect(await (await client.query({ query: q, format: 'JSONEachRow' })).json()).toEqual([
      { n: '0', s: '0' },
      { n: '1', s: '1' },
    ]);
    const json = await (await client.query({ query: q, format: 'JSON' })).json<{ n: string; s: string }>();
    expect(json.data).toEqual([
      { n: '0', s: '0' },
      { n: '1', s: '1' },
    ]);
    expect(json.meta).toEqual([
      { name: 'n', type: 'UInt64' },
      { name: 's', type: 'String' },
    ]);
    expect(json.rows).toBe(2);
    expect(await (await client.query({ query: q, format: 'JSONCompactEachRow' })).json()).toEqual([
      ['0', '0'],
      ['1', '1'],
    ]);
    expect(await (await client.query({ query: q, format: 'CSV' })).text()).toBe('0,"0"\n1,"1"\n');
    expect(await (await client.query({ query: q, format: 'TabSeparated' })).text()).toBe('0\t0\n1\t1\n');
  });

  it('streams JSONEachRow rows', async () => {
    const rs = await client.query({ query: 'SELECT number AS n FROM numbers(1000)', format: 'JSONEachRow' });
    let count = 0;
    for await (const batch of rs.stream<{ n: string }>()) count += batch.length;
    expect(count).toBe(1000);
  });

  it('binds query params: numbers, strings with quotes and backslashes, arrays, maps', async () => {
    const tricky = `it's a "test" \\ with a backslash, a tab\tand a\nnewline`;
    const [row] = await rows<{ x: number; s: string; a: string[]; m: Record<string, string>; n: string | null }>(
      'SELECT {x:UInt32} AS x, {s:String} AS s, {a:Array(String)} AS a, {m:Map(String, String)} AS m, {n:Nullable(String)} AS n',
      { x: 42, s: tricky, a: ['a', "b'c", 'd\\e'], m: { k: "v'1", 'k\\2': 'v2' }, n: null },
    );
    expect(row).toEqual({ x: 42, s: tricky, a: ['a', "b'c", 'd\\e'], m: { k: "v'1", 'k\\2': 'v2' }, n: null });
  });

  it('accepts query params far larger than 16 KB in the URL, as ClickHouse does (up to 1 MiB)', async () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `user-${i}-${'x'.repeat(20)}`);
    const rs = await client.query({ query: 'SELECT length({ids:Array(String)}) AS n', query_params: { ids }, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: '3000' }]);
  });

  it('quotes 64-bit integers in JSON like a real server, unless asked not to', async () => {
    const [row] = await rows<{ c: unknown; u32: unknown; i64: unknown }>(
      'SELECT count() AS c, toUInt32(7) AS u32, toInt64(-9007199254740993) AS i64 FROM numbers(5)',
    );
    expect(row).toEqual({ c: '5', u32: 7, i64: '-9007199254740993' });
    expect(toNumber(row?.c)).toBe(5);
    const rs = await client.query({
      query: 'SELECT count() AS c FROM numbers(5)',
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    expect(await rs.json()).toEqual([{ c: 5 }]);
  });

  it('sends ClickHouse headers: query id, format, summary, timezone', async () => {
    const queryId = `q-${randomUUID()}`;
    const rs = await client.query({ query: 'SELECT 1 AS x', format: 'JSONEachRow', query_id: queryId });
    expect(rs.query_id).toBe(queryId);
    expect(rs.response_headers['x-clickhouse-query-id']).toBe(queryId);
    expect(rs.response_headers['x-clickhouse-format']).toBe('JSONEachRow');
    expect(rs.response_headers['x-clickhouse-timezone']).toMatch(/UTC/);
    const summary = JSON.parse(String(rs.response_headers['x-clickhouse-summary'])) as Record<string, unknown>;
    for (const k of ['read_rows', 'read_bytes', 'written_rows', 'written_bytes', 'total_rows_to_read', 'result_rows', 'result_bytes', 'elapsed_ns']) {
      expect(typeof summary[k], k).toBe('string');
    }
    expect(summary.result_rows).toBe('1');
    await rs.close();
  });
});

describe('clickhouse gateway: writes', () => {
  it('inserts JSONEachRow and JSONCompactEachRow values and a stream', async () => {
    const tag = randomUUID().slice(0, 8);
    const r1 = await client.insert({ table: 'kv', values: [{ k: `${tag}-a`, v: 1 }, { k: `${tag}-b`, v: '2' }], format: 'JSONEachRow' });
    expect(r1.summary?.written_rows).toBe('2');
    await client.insert({ table: 'kv', values: [[`${tag}-c`, 3]], format: 'JSONCompactEachRow' });
    await client.insert({ table: 'kv', columns: ['v', 'k'], values: [[4, `${tag}-d`]], format: 'JSONCompactEachRow' });
    const stream = Readable.from(
      Array.from({ length: 500 }, (_, i) => ({ k: `${tag}-s${i}`, v: i })),
      { objectMode: true },
    );
    await client.insert({ table: 'kv', values: stream, format: 'JSONEachRow' });
    await client.insert({ table: 'kv', values: [], format: 'JSONEachRow' }); // a no-op, like the server
    const [row] = await rows<{ n: string; s: string }>('SELECT count() AS n, sum(v) AS s FROM kv WHERE startsWith(k, {p:String})', { p: tag });
    expect(row).toEqual({ n: '504', s: String(1 + 2 + 3 + 4 + (499 * 500) / 2) });
  });

  it('runs commands (DDL) and exec with its own FORMAT', async () => {
    const table = `t_${randomUUID().slice(0, 8)}`;
    await client.command({ query: `CREATE TABLE ${table} (id UInt32, name String) ENGINE = MergeTree ORDER BY id` });
    await client.command({ query: `INSERT INTO ${table} VALUES (1, 'one'), (2, 'two')` });
    const ex = await client.exec({ query: `SELECT name FROM ${table} ORDER BY id FORMAT TabSeparated` });
    let text = '';
    for await (const chunk of ex.stream) text += Buffer.from(chunk as Buffer).toString('utf8');
    expect(text).toBe('one\ntwo\n');
    await client.command({ query: `ALTER TABLE ${table} UPDATE name = 'uno' WHERE id = 1`, clickhouse_settings: { mutations_sync: '1' } });
    expect(await rows(`SELECT name FROM ${table} WHERE id = 1`)).toEqual([{ name: 'uno' }]);
    await client.command({ query: `DROP TABLE ${table}` });
  });

  it('deduplicates through ReplacingMergeTree FINAL', async () => {
    await client.command({
      query: 'CREATE TABLE IF NOT EXISTS rmt (id String, ver UInt64, val String) ENGINE = ReplacingMergeTree(ver) ORDER BY id',
    });
    const id = randomUUID();
    await client.insert({ table: 'rmt', values: [{ id, ver: 1, val: 'old' }], format: 'JSONEachRow' });
    await client.insert({ table: 'rmt', values: [{ id, ver: 2, val: 'new' }], format: 'JSONEachRow' });
    expect(await rows('SELECT val FROM rmt FINAL WHERE id = {id:String}', { id })).toEqual([{ val: 'new' }]);
    const [raw] = await rows<{ n: string }>('SELECT count() AS n FROM rmt WHERE id = {id:String}', { id });
    expect(raw?.n).toBe('2');
  });

  it('runs migrate() through the gateway, idempotently', async () => {
    const first = await migrate(client);
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrate(client);
    expect(second.applied).toEqual([]);
    expect(second.skipped).toEqual(first.applied);
  });

  it('accepts gzip request bodies and gzips responses when asked', async () => {
    const gz = newClient({ compression: { request: true, response: true } });
    const tag = randomUUID().slice(0, 8);
    await gz.insert({ table: 'kv', values: Array.from({ length: 200 }, (_, i) => ({ k: `${tag}-${i}`, v: i })), format: 'JSONEachRow' });
    const rs = await gz.query({ query: 'SELECT count() AS n FROM kv WHERE startsWith(k, {p:String})', query_params: { p: tag }, format: 'JSONEachRow' });
    expect(rs.response_headers['content-encoding']).toBe('gzip');
    expect(await rs.json()).toEqual([{ n: '200' }]);
  });
});

describe('clickhouse gateway: isolation between requests', () => {
  it('a readonly query does not make the next insert fail', async () => {
    const ro = await caught(
      client.command({ query: "INSERT INTO kv VALUES ('ro', 1)", clickhouse_settings: { readonly: '1' } }),
    );
    expect(ro).toBeInstanceOf(ClickHouseError);
    expect((ro as ClickHouseError).type).toBe('READONLY');
    const roSelect = await client.query({ query: 'SELECT count() AS n FROM kv', format: 'JSONEachRow', clickhouse_settings: { readonly: '1' } });
    expect(await roSelect.json()).toHaveLength(1);
    await client.insert({ table: 'kv', values: [{ k: 'after-ro', v: 1 }], format: 'JSONEachRow' });
    await client.command({ query: "INSERT INTO kv VALUES ('after-ro-2', 2)" });
  });

  it('max_result_rows on one query does not limit the next', async () => {
    const limited = await caught(
      client.query({
        query: 'SELECT number FROM numbers(10)',
        format: 'JSONEachRow',
        clickhouse_settings: { max_result_rows: '3', result_overflow_mode: 'throw' },
      }),
    );
    expect((limited as ClickHouseError).type).toBe('TOO_MANY_ROWS_OR_BYTES');
    for (let i = 0; i < 4; i++) expect(await rows('SELECT number FROM numbers(10)')).toHaveLength(10);
  });

  it('settings on an insert apply to that insert only', async () => {
    const tag = randomUUID().slice(0, 8);
    const values = [{ k: `${tag}-good`, v: 1 }, { k: `${tag}-bad`, v: 'not-a-number' }];
    await client.insert({ table: 'kv', values, format: 'JSONEachRow', clickhouse_settings: { input_format_allow_errors_num: '1' } });
    expect(await rows('SELECT k FROM kv WHERE startsWith(k, {p:String})', { p: tag })).toEqual([{ k: `${tag}-good` }]);
    const err = await caught(client.insert({ table: 'kv', values, format: 'JSONEachRow' }));
    expect(err).toBeInstanceOf(ClickHouseError);
    const [row] = await rows<{ value: string }>("SELECT value FROM system.settings WHERE name = 'input_format_allow_errors_num'");
    expect(row?.value).toBe('0');
  });

  it('a SET statement or a query parameter does not outlive its request', async () => {
    await client.command({ query: 'SET max_result_rows = 1, result_overflow_mode = \'throw\'' });
    expect(await rows('SELECT number FROM numbers(5)')).toHaveLength(5);
    await rows('SELECT {leak:String} AS v', { leak: 'x' });
    const err = await caught(client.query({ query: 'SELECT {leak:String} AS v', format: 'JSONEachRow' }));
    expect((err as ClickHouseError).type).toBe('UNKNOWN_QUERY_PARAMETER');
  });

  it('refuses several statements in one request, like a server', async () => {
    const err = await caught(client.command({ query: 'SELECT 1; SELECT 2' }));
    expect(err).toBeInstanceOf(ClickHouseError);
    expect((err as ClickHouseError).code).toBe('62');
  });
});

describe('clickhouse gateway: readonly with other settings, like a server', () => {
  // A server checks every setting of a request against the user's settings before applying any,
  // so readonly=1 in the URL never refuses the settings sent beside it, whatever their order.
  it.each([
    { order: 'readonly first', settings: { readonly: '1', max_result_rows: '3', result_overflow_mode: 'throw' } },
    { order: 'readonly last', settings: { max_result_rows: '3', result_overflow_mode: 'throw', readonly: '1' } },
  ] satisfies { order: string; settings: ClickHouseSettings }[])('applies them together ($order)', async ({ settings }) => {
    const err = await caught(client.query({ query: 'SELECT number FROM numbers(5)', format: 'JSONEachRow', clickhouse_settings: settings }));
    expect((err as ClickHouseError).type).toBe('TOO_MANY_ROWS_OR_BYTES');
    const ok = await client.query({ query: 'SELECT number FROM numbers(3)', format: 'JSONEachRow', clickhouse_settings: settings });
    expect(await ok.json()).toHaveLength(3);
  });

  it('applies additional_table_filters sent with readonly=1, and the statement cannot change them', async () => {
    const tag = randomUUID().slice(0, 8);
    await client.insert({ table: 'kv', values: [{ k: `${tag}-a`, v: 1 }, { k: `${tag}-b`, v: 2 }], format: 'JSONEachRow' });
    const filters = `{'kv': 'v = 1', 'default.kv': 'v = 1'}`;
    // NOTE: a plain string: the client's SettingsMap does not escape quotes inside a filter
    const settings: Record<string, string> = { readonly: '1', additional_table_filters: filters };
    const only = await client.query({ query: 'SELECT k FROM default.kv WHERE startsWith(k, {p:String})', query_params: { p: tag }, format: 'JSONEachRow', clickhouse_settings: settings });
    expect(await only.json()).toEqual([{ k: `${tag}-a` }]);
    const override = await caught(
      client.query({ query: "SELECT k FROM kv SETTINGS additional_table_filters = {'kv': '1'}", format: 'JSONEachRow', clickhouse_settings: settings }),
    );
    expect((override as ClickHouseError).type).toBe('READONLY');
    // an unchanged value is not a change (SettingsConstraints), as on a server
    const same = await client.query({ query: 'SELECT 1 AS x SETTINGS readonly = 1', format: 'JSONEachRow', clickhouse_settings: settings });
    expect(await same.json()).toEqual([{ x: 1 }]);
  });
});

describe('clickhouse gateway: client-side file clauses are refused, like a server', () => {
  it.each([
    "SELECT 1 INTO OUTFILE '{f}'",
    "SELECT 1 INTO OUTFILE '{f}' APPEND",
    "SELECT 1 INTO OUTFILE '{f}' TRUNCATE",
    "SELECT 1 INTO OUTFILE '{f}' COMPRESSION 'gzip' LEVEL 3",
    "SELECT 1 INTO OUTFILE '{f}' AND STDOUT",
    "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{f}' FORMAT CSV",
    "EXPLAIN QUERY TREE SELECT 1 INTO OUTFILE '{f}'",
    "EXPLAIN AST SELECT 1 INTO OUTFILE '{f}'",
    "SHOW TABLES INTO OUTFILE '{f}'",
  ])('%s', async (template) => {
    const dir = mkdtempSync(join(tmpdir(), 'tracklane-gw-outfile-'));
    const file = join(dir, 'out.txt');
    try {
      const err = await caught(client.exec({ query: template.replace('{f}', file) }));
      expect((err as ClickHouseError).type).toBe('INTO_OUTFILE_NOT_ALLOWED');
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('INSERT … FROM INFILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracklane-gw-infile-'));
    const file = join(dir, 'in.csv');
    writeFileSync(file, 'from-infile,7\n');
    try {
      const err = await caught(client.command({ query: `INSERT INTO kv FROM INFILE '${file}' FORMAT CSV` }));
      expect((err as ClickHouseError).type).toBe('UNKNOWN_TYPE_OF_QUERY');
      expect(await rows('SELECT k FROM kv WHERE k = {k:String}', { k: 'from-infile' })).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the word alone changes nothing', async () => {
    expect(await rows("SELECT 'INTO OUTFILE x' AS outfile")).toEqual([{ outfile: 'INTO OUTFILE x' }]);
  });
});

describe('clickhouse gateway: errors', () => {
  it('a syntax error is a ClickHouseError with code 62, status 400', async () => {
    const err = await caught(client.query({ query: 'SELEC 1', format: 'JSONEachRow' }));
    expect(err).toBeInstanceOf(ClickHouseError);
    expect((err as ClickHouseError).code).toBe('62');
    expect((err as ClickHouseError).type).toBe('SYNTAX_ERROR');
    expect((err as ClickHouseError).message).toMatch(/^Syntax error/);
    const raw = await rawRequest('/', 'SELEC 1');
    expect(raw.status).toBe(400);
    expect(raw.headers['x-clickhouse-exception-code']).toBe('62');
    expect(raw.body).toMatch(/^Code: 62\. DB::Exception: .*\(SYNTAX_ERROR\) \(version \d+\./s);
  });

  it('an unknown table is code 60, status 404, on query, insert and command', async () => {
    for (const run of [
      () => client.query({ query: 'SELECT * FROM no_such_table', format: 'JSONEachRow' }),
      () => client.insert({ table: 'no_such_table', values: [{ a: 1 }], format: 'JSONEachRow' }),
      () => client.command({ query: 'DROP TABLE no_such_table' }),
    ]) {
      const err = await caught(run());
      expect(err).toBeInstanceOf(ClickHouseError);
      expect((err as ClickHouseError).code).toBe('60');
      expect((err as ClickHouseError).type).toBe('UNKNOWN_TABLE');
    }
    expect((await rawRequest('/', 'SELECT * FROM no_such_table')).status).toBe(404);
  });

  it('bad rows in an insert surface the parse error', async () => {
    const err = await caught(client.insert({ table: 'kv', values: [{ k: 'x', v: 'not-a-number' }], format: 'JSONEachRow' }));
    expect(err).toBeInstanceOf(ClickHouseError);
    expect(Number((err as ClickHouseError).code)).toBeGreaterThan(0);
  });

  it('an unsupported database is refused clearly', async () => {
    const other = newClient({ database: 'no_such_db' });
    const err = await caught(other.query({ query: 'SELECT 1', format: 'JSONEachRow' }));
    expect((err as ClickHouseError).type).toBe('UNKNOWN_DATABASE');
  });

  it('refuses a body over the limit with 413', async () => {
    const small = await startClickHouseGateway({ port: 0, dataDir, maxBodyBytes: 1024 });
    try {
      const c = createClient({ url: small.url, log: { level: ClickHouseLogLevel.OFF } });
      const err = await caught(c.insert({ table: 'kv', values: Array.from({ length: 200 }, (_, i) => ({ k: `big-${i}`, v: i })), format: 'JSONEachRow' }));
      // NOTE: the gateway answers 413 and closes; the client may see that answer or, when it was
      // still writing, the closed socket
      const seen = err instanceof ClickHouseError ? `${err.type ?? ''} ${err.message}` : String((err as Error).message);
      expect(seen).toMatch(/QUERY_IS_TOO_LARGE|socket hang up|EPIPE|ECONNRESET/);
      // the small gateway keeps serving after refusing
      expect(await rows('SELECT 1 AS x', undefined, c)).toEqual([{ x: 1 }]);
      await c.close();
    } finally {
      await small.close();
    }
  });
});

describe('clickhouse gateway: concurrency and processes', () => {
  it('bounds the queue: beyond it a request gets TOO_MANY_SIMULTANEOUS_QUERIES, then service resumes', async () => {
    const tight = await startClickHouseGateway({ port: 0, dataDir, concurrency: 1, maxQueued: 0 });
    const c = createClient({ url: tight.url, log: { level: ClickHouseLogLevel.OFF } });
    try {
      const slow = c.query({ query: 'SELECT sleep(0.5) AS s', format: 'JSONEachRow' });
      await new Promise((r) => setTimeout(r, 100));
      const err = await caught(c.query({ query: 'SELECT 1', format: 'JSONEachRow' }));
      expect((err as ClickHouseError).type).toBe('TOO_MANY_SIMULTANEOUS_QUERIES');
      await (await slow).json();
      expect(await rows('SELECT 1 AS x', undefined, c)).toEqual([{ x: 1 }]);
    } finally {
      await c.close();
      await tight.close();
    }
  });

  it('serves 20 parallel queries and inserts', async () => {
    const tag = randomUUID().slice(0, 8);
    const jobs = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? client.insert({ table: 'kv', values: [{ k: `${tag}-${i}`, v: i }], format: 'JSONEachRow' })
        : client.query({ query: 'SELECT sum(number) AS s FROM numbers({n:UInt32})', query_params: { n: 1000 + i }, format: 'JSONEachRow' }).then((r) => r.json()),
    );
    const results = await Promise.all(jobs);
    expect(results.filter((r) => Array.isArray(r))).toHaveLength(10);
    const [row] = await rows<{ n: string }>('SELECT count() AS n FROM kv WHERE startsWith(k, {p:String})', { p: tag });
    expect(row?.n).toBe('10');
  });

  it('two processes see each other\'s inserts', async () => {
    const tag = randomUUID().slice(0, 8);
    await client.insert({ table: 'kv', values: [{ k: `${tag}-parent`, v: 1 }], format: 'JSONEachRow' });
    // a separate Node process, talking to the gateway only over HTTP (no chDB in it)
    const script = `
      import { createClient } from '@clickhouse/client';
      const c = createClient({ url: process.env.CH_URL });
      const tag = process.env.TAG;
      await c.insert({ table: 'kv', values: [{ k: tag + '-child', v: 2 }], format: 'JSONEachRow' });
      const rs = await c.query({ query: 'SELECT k FROM kv WHERE startsWith(k, {p:String}) ORDER BY k', query_params: { p: tag }, format: 'JSONEachRow' });
      process.stdout.write(JSON.stringify(await rs.json()));
      await c.close();
    `;
    const out = await new Promise<string>((ok, fail) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        cwd: repoRoot,
        env: { ...process.env, CH_URL: gateway.url, TAG: tag },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', fail);
      child.on('exit', (code) => (code === 0 ? ok(stdout) : fail(new Error(`child exited ${code}: ${stderr}`))));
    });
    expect(JSON.parse(out)).toEqual([{ k: `${tag}-child` }, { k: `${tag}-parent` }]);
    expect(await rows('SELECT k FROM kv WHERE k = {k:String}', { k: `${tag}-child` })).toEqual([{ k: `${tag}-child` }]);
  });
});
