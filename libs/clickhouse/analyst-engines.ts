// Where an analyst statement runs: chDB in this process or a ClickHouse server over HTTP, each
// opening contexts whose settings (readonly = 1 among them) are fixed before the statement is seen.
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { setStatement, type Settings } from './analyst-settings.js';

/** Who runs the statement: a tenant's read key (its rows only) or the operator. */
export type Who = { kind: 'tenant'; tenantId: string } | { kind: 'operator' };

/** Statements on one engine-side context whose settings were fixed before any statement ran. */
export interface StatementContext {
  /** runs one statement; returns its JSONEachRow rows */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  close(): void;
}

export interface Engine {
  open(who: Who, settings: Settings): Promise<StatementContext>;
  /** settings only this engine needs (chDB: spilling to disk off) */
  extraSettings: Settings;
  close(): void;
}

/**
 * chDB: a connection per step group on the process's one engine.
 * TRICKY: chDB keeps every SET (and per-query settings, which the chDB connection turns into SETs)
 * on the connection for the rest of its life, and readonly = 1 refuses later SETs. So each
 * statement's connections are opened fresh, SET up in ONE statement ending in readonly = 1 (one
 * SET is checked against the settings before it, so readonly does not refuse its neighbours), and
 * closed once their statements settled (closing a busy chDB connection aborts the engine).
 */
export async function chdbEngine(dataDir: string): Promise<Engine> {
  const { Session } = await import('chdb');
  // NOTE: an idle connection held for the lifetime of this object keeps the engine up: with no
  // connection left, chDB shuts the engine down and the next one boots it again (≈ 40 ms to open
  // and 7–17 ms to close, blocking the event loop, instead of 0.2 ms and 0.04 ms; measured).
  const anchor = new Session(dataDir);
  try {
    await anchor.queryAsync('SELECT 1');
  } catch (err) {
    anchor.close();
    throw err;
  }
  return {
    close: () => anchor.close(),
    // NOTE: spilling to disk would turn a memory bound into a disk-filling one (chDB defaults to
    // spilling GROUP BY / ORDER BY / JOIN at half the memory limit).
    extraSettings: { max_bytes_ratio_before_external_group_by: 0, max_bytes_ratio_before_external_sort: 0, max_bytes_ratio_before_external_join: 0 },
    open: async (_who, settings) => {
      const session = new Session(dataDir);
      let busy = 0;
      let closeWanted = false;
      const settle = (): void => {
        if (closeWanted && busy === 0) session.close();
      };
      const rows = async (sql: string): Promise<Record<string, unknown>[]> => {
        busy++;
        try {
          return parseJsonEachRow((await session.queryAsync(sql, { format: 'JSONEachRow' })).text());
        } finally {
          busy--;
          settle();
        }
      };
      try {
        await rows(setStatement(settings));
      } catch (err) {
        session.close();
        throw err;
      }
      return {
        rows,
        close: () => {
          closeWanted = true;
          settle();
        },
      };
    },
  };
}

/** A ClickHouse server: every request carries the settings (readonly among them), so a statement cannot change them. */
export function serverEngine(tenantClient: ClickHouseClient, operatorClient: ClickHouseClient): Engine {
  return {
    extraSettings: {},
    close: () => undefined,
    open: async (who, settings) => {
      const client = who.kind === 'tenant' ? tenantClient : operatorClient;
      const clickhouse_settings: ClickHouseSettings = {
        ...settings,
        readonly: '1',
        default_format: 'JSONEachRow',
        // an error after the first bytes would otherwise arrive inside a 200 response
        wait_end_of_query: 1,
      };
      return {
        rows: async (sql) => {
          // NOTE: exec sends the statement as is (query() would append its own FORMAT clause)
          const res = await client.exec({ query: sql, clickhouse_settings });
          const chunks: Buffer[] = [];
          for await (const chunk of res.stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
          return parseJsonEachRow(Buffer.concat(chunks).toString('utf8'));
        },
        close: () => undefined,
      };
    },
  };
}

function parseJsonEachRow(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) if (line.trim() !== '') out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}
