// `tracklane migrate` without CLICKHOUSE_URL: where chDB is installed it migrates the embedded
// data dir; where it is not (the container image deletes chDB's native engine) it refuses with a
// ConfigError naming CLICKHOUSE_URL, exit 2, no stack.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let dir = '';
let withoutChdb = '';

// NOTE: resolves chDB's native package as missing, as `rm -rf node_modules/@chdb` in the image does
const HIDE_CHDB_NATIVE = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request.startsWith('@chdb/')) throw Object.assign(new Error("Cannot find module '" + request + "'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tracklane-migrate-'));
  withoutChdb = join(dir, 'hide-chdb.cjs');
  await writeFile(withoutChdb, HIDE_CHDB_NATIVE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function migrateCommand(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { CLICKHOUSE_URL: _url, KAFKA_BROKERS: _k, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'migrate'], {
      env: { ...inherited, LOG_LEVEL: 'warn', ...env },
      timeout: 90_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('tracklane migrate without CLICKHOUSE_URL', () => {
  it('migrates the embedded data dir where chDB is installed, and again finds nothing to do', async () => {
    const env = { TRACKLANE_DATA_DIR: join(dir, 'data') };
    const first = await migrateCommand(env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^migrations: [1-9]\d* applied, 0 already applied\n/);
    const second = await migrateCommand(env);
    expect(second.stdout).toMatch(/^migrations: 0 applied, [1-9]\d* already applied\n/);
  }, 120_000);

  it('refuses with a ConfigError naming CLICKHOUSE_URL where chDB is not installed', async () => {
    const r = await migrateCommand({ TRACKLANE_DATA_DIR: join(dir, 'image-data'), NODE_OPTIONS: `--require ${withoutChdb}` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tracklane: CLICKHOUSE_URL is not set and chDB .* is not installed here/);
    // a ConfigError is told in one line, without a stack
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  }, 120_000);
});
