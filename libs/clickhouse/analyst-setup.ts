// Where analyst SQL runs, for the embedded runner and the fleet collector alike: chDB in this
// process, or a ClickHouse server — there through clients of their own, tenant queries as the
// read-only analyst user of schemas/clickhouse-server/analyst-user.sql when one is configured.
import { resolve } from 'node:path';
import type { Logger } from '../core/logger.js';
import { createAnalystSql, type AnalystSql, type QueryLimits } from './analyst-sql.js';
import { AnalystLoginError, clickhouseAnalystCredentialsFrom, clickhouseConnectionFrom } from './clickhouse-connection.js';
import { createClickHouse, type ClickHouseClient } from './client.js';

export interface AnalystSetup {
  /** http(s) URL of a ClickHouse server; unset → chDB on `chdbDir` */
  url?: string;
  chdbDir: string;
  database?: string;
  username?: string;
  password?: string;
  /** PEM CAs of an https:// server (CLICKHOUSE_CA_FILE) */
  caCert?: Buffer;
  /** the server's read-only analyst user (CLICKHOUSE_ANALYST_USER / _PASSWORD[_FILE]) */
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
  CLICKHOUSE_PASSWORD_FILE?: string | undefined;
  CLICKHOUSE_CA_FILE?: string | undefined;
  CLICKHOUSE_ANALYST_USER?: string | undefined;
  CLICKHOUSE_ANALYST_PASSWORD?: string | undefined;
  CLICKHOUSE_ANALYST_PASSWORD_FILE?: string | undefined;
}

/** The set-up of the settings; password and CA files are read now (a ConfigError names the setting). */
export function analystSetupFrom(env: AnalystEnv, chdbDir: string, limits: Partial<QueryLimits>, logger: Logger): AnalystSetup {
  const settings = {
    CLICKHOUSE_URL: env.CLICKHOUSE_URL,
    CLICKHOUSE_USER: env.CLICKHOUSE_USER,
    CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD,
    CLICKHOUSE_PASSWORD_FILE: env.CLICKHOUSE_PASSWORD_FILE,
    CLICKHOUSE_CA_FILE: env.CLICKHOUSE_CA_FILE,
    CLICKHOUSE_ANALYST_USER: env.CLICKHOUSE_ANALYST_USER,
    CLICKHOUSE_ANALYST_PASSWORD: env.CLICKHOUSE_ANALYST_PASSWORD,
    CLICKHOUSE_ANALYST_PASSWORD_FILE: env.CLICKHOUSE_ANALYST_PASSWORD_FILE,
  };
  // NOTE: chDB (no URL) has no users: nothing to read
  const main = env.CLICKHOUSE_URL ? clickhouseConnectionFrom(settings) : {};
  const analyst = env.CLICKHOUSE_URL ? clickhouseAnalystCredentialsFrom(settings) : {};
  return {
    url: env.CLICKHOUSE_URL,
    chdbDir,
    database: env.CLICKHOUSE_DATABASE,
    username: main.username,
    password: main.password,
    ...(main.caCert ? { caCert: main.caCert } : {}),
    analystUser: analyst.username,
    analystPassword: analyst.password,
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
    createClickHouse({ url: s.url, dataDir: '', database: s.database, username, password, ...(s.caCert ? { caCert: s.caCert } : {}), requestTimeoutMs: 60_000, logger: s.logger });
  if (!s.analystUser) {
    s.logger.warn('CLICKHOUSE_ANALYST_USER is not set: tenant queries run as the main ClickHouse user (isolated by Tracklane\'s checks and the engine-side tenant filter, without the analyst user\'s grants)');
  }
  const operatorClient = client(s.username, s.password);
  const tenantClient = s.analystUser ? client(s.analystUser, s.analystPassword) : client(s.username, s.password);
  // NOTE: a wrong password or CA shows at start (one line naming the setting), not at the first query
  try {
    await operatorClient.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((rs) => rs.json());
    if (s.analystUser) {
      await tenantClient
        .query({ query: 'SELECT 1', format: 'JSONEachRow' })
        .then((rs) => rs.json())
        .catch((err: unknown) => {
          throw new AnalystLoginError(err);
        });
    }
  } catch (err) {
    await Promise.all([operatorClient.close(), tenantClient.close()]);
    throw err;
  }
  const sql = await createAnalystSql({ engine: 'server', tenantClient, operatorClient, database: s.database, limits: s.limits });
  return {
    sql,
    close: async () => {
      await sql.close?.();
      await Promise.all([operatorClient.close(), tenantClient.close()]);
    },
  };
}
