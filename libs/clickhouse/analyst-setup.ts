// Where analyst SQL runs, for the embedded runner and the fleet collector alike: chDB in this
// process, or a ClickHouse server — there through clients of their own, tenant queries as the
// read-only analyst user of schemas/clickhouse-server/analyst-user.sql when one is configured.
import { resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import { createAnalystSql, type AnalystSql, type QueryLimits } from './analyst-sql.js';
import { createClickHouse, type ClickHouseClient } from './client.js';

export interface AnalystSetup {
  /** http(s) URL of a ClickHouse server; unset → chDB on `chdbDir` */
  url?: string;
  chdbDir: string;
  database?: string;
  username?: string;
  password?: string;
  /** the server's read-only analyst user (CLICKHOUSE_ANALYST_USER / _PASSWORD) */
  analystUser?: string;
  analystPassword?: string;
  limits: Partial<QueryLimits>;
  logger: Logger;
}

/** The CLICKHOUSE_* and QUERY_* settings the embedded runner and the collector share. */
export interface AnalystEnv {
  CLICKHOUSE_URL?: string | undefined;
  CLICKHOUSE_DATABASE?: string | undefined;
  CLICKHOUSE_USER?: string | undefined;
  CLICKHOUSE_PASSWORD?: string | undefined;
  CLICKHOUSE_ANALYST_USER?: string | undefined;
  CLICKHOUSE_ANALYST_PASSWORD?: string | undefined;
}

export function analystSetupFrom(env: AnalystEnv, chdbDir: string, limits: Partial<QueryLimits>, logger: Logger): AnalystSetup {
  return {
    url: env.CLICKHOUSE_URL,
    chdbDir,
    database: env.CLICKHOUSE_DATABASE,
    username: env.CLICKHOUSE_USER,
    password: env.CLICKHOUSE_PASSWORD,
    analystUser: env.CLICKHOUSE_ANALYST_USER,
    analystPassword: env.CLICKHOUSE_ANALYST_PASSWORD,
    limits,
    logger,
  };
}

export interface OpenAnalystSql {
  sql: AnalystSql;
  close(): Promise<void>;
}

export async function openAnalystSql(s: AnalystSetup): Promise<OpenAnalystSql> {
  if (!s.url) {
    const sql = await createAnalystSql({ engine: 'chdb', dataDir: resolve(s.chdbDir), limits: s.limits });
    return { sql, close: async () => sql.close?.() };
  }
  // NOTE: no client-level settings here (cluster mode's insert_distributed_sync would be
  // refused under readonly) and a timeout above the engine's own execution bound.
  const client = (username?: string, password?: string): ClickHouseClient =>
    createClickHouse({ url: s.url, dataDir: '', database: s.database, username, password, requestTimeoutMs: 60_000, logger: s.logger });
  if (!s.analystUser) {
    s.logger.warn('CLICKHOUSE_ANALYST_USER is not set: tenant queries run as the main ClickHouse user (isolated by Tracklane\'s checks and the engine-side tenant filter, without the analyst user\'s grants)');
  }
  const operatorClient = client(s.username, s.password);
  const tenantClient = s.analystUser ? client(s.analystUser, s.analystPassword) : client(s.username, s.password);
  const sql = await createAnalystSql({ engine: 'server', tenantClient, operatorClient, database: s.database, limits: s.limits });
  return {
    sql,
    close: async () => {
      await sql.close?.();
      await Promise.all([operatorClient.close(), tenantClient.close()]);
    },
  };
}
