// Applies the numbered SQL migrations in schemas/clickhouse/ once each, in order, and
// records them (name, checksum, applied_at) in `tracklane_migrations`.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Logger } from '../core/logger.js';
import { toClusterDdl } from './cluster-ddl.js';

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../schemas/clickhouse/', import.meta.url));
export const MIGRATIONS_TABLE = 'tracklane_migrations';

const MIGRATION_FILE = /^(\d{4})_[a-z0-9_]+\.sql$/;

export interface MigrateOptions {
  dir?: string;
  logger?: Logger;
  /** CLICKHOUSE_CLUSTER: run every statement in its cluster form (libs/clickhouse/cluster-ddl.ts) */
  cluster?: string;
  /** the database the cluster's Distributed tables point at (CLICKHOUSE_DATABASE, default "default") */
  database?: string;
}

export interface MigrateResult {
  applied: string[];
  skipped: string[];
}

export class MigrationChecksumError extends Error {
  override readonly name = 'MigrationChecksumError';
}

const MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE}
      (name String, checksum String, applied_at DateTime64(3, 'UTC'))
      ENGINE = ReplacingMergeTree(applied_at) ORDER BY name`;

/** The statements migrate() runs for a SQL text: as written on one node, in cluster form with `cluster`. */
export function migrationStatements(sql: string, opts: Pick<MigrateOptions, 'cluster' | 'database'> = {}): string[] {
  const statements = splitStatements(sql);
  const { cluster } = opts;
  return cluster ? statements.flatMap((s) => toClusterDdl(s, { cluster, database: opts.database })) : statements;
}

/**
 * Idempotent: already-applied migrations are skipped; an applied migration whose file
 * changed since is refused (edit history by adding a new migration, never by rewriting one).
 * NOTE: every statement must itself be idempotent (IF NOT EXISTS / OR REPLACE): ClickHouse
 * DDL is not transactional, so a migration interrupted half-way is re-run from its start.
 */
export async function migrate(client: ClickHouseClient, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const dir = opts.dir ?? DEFAULT_MIGRATIONS_DIR;
  const log = opts.logger;
  for (const query of migrationStatements(MIGRATIONS_TABLE_DDL, opts)) await client.command({ query });
  const rs = await client.query({
    query: `SELECT name, argMax(checksum, applied_at) AS checksum FROM ${MIGRATIONS_TABLE} GROUP BY name`,
    format: 'JSONEachRow',
  });
  const done = new Map((await rs.json<{ name: string; checksum: string }>()).map((r) => [r.name, r.checksum]));

  const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
  const result: MigrateResult = { applied: [], skipped: [] };
  // Check every applied file first, so a changed file is refused before anything new runs.
  const pending: { name: string; sql: string; checksum: string }[] = [];
  for (const name of files) {
    const sql = await readFile(join(dir, name), 'utf8');
    const checksum = createHash('sha256').update(sql).digest('hex');
    const appliedChecksum = done.get(name);
    if (appliedChecksum === undefined) {
      pending.push({ name, sql, checksum });
    } else if (appliedChecksum !== checksum) {
      throw new MigrationChecksumError(
        `migration ${name} was changed after it was applied (checksum ${appliedChecksum.slice(0, 12)}… → ${checksum.slice(0, 12)}…); ` +
          `restore the file and add a new numbered migration instead`,
      );
    } else {
      result.skipped.push(name);
    }
  }
  for (const m of pending) {
    const statements = migrationStatements(m.sql, opts);
    const started = Date.now();
    for (const query of statements) await client.command({ query });
    await client.insert({
      table: MIGRATIONS_TABLE,
      values: [{ name: m.name, checksum: m.checksum, applied_at: Date.now() }],
      format: 'JSONEachRow',
    });
    result.applied.push(m.name);
    log?.info({ migration: m.name, statements: statements.length, ms: Date.now() - started }, 'migration applied');
  }
  return result;
}

/**
 * Splits a SQL file into statements on `;` outside quotes, backquoted identifiers and
 * comments. Comment-only chunks are dropped; comments inside a statement are kept.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  const push = (end: number): void => {
    const stmt = sql.slice(start, end).trim();
    if (stripComments(stmt).trim() !== '') out.push(stmt);
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) throw new Error('unterminated /* comment in migration');
      i = end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(sql, i, c);
    } else if (c === ';') {
      push(i);
      start = i + 1;
      i++;
    } else {
      i++;
    }
  }
  push(n);
  return out;
}

function skipQuoted(sql: string, from: number, quote: string): number {
  let i = from + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\\') {
      i += 2;
    } else if (c === quote) {
      // a doubled quote is an escaped quote
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  throw new Error(`unterminated ${quote} quote in migration`);
}

function stripComments(stmt: string): string {
  return stmt.replace(/\/\*[\s\S]*?\*\//g, '').replace(/--[^\n]*/g, '');
}
