// Configuration of the embedded runner (`tracklane start`), parsed once from the environment.
import { z } from 'zod';
import { clickhouseAnalystShape, clickhouseConnectionShape } from '../../libs/clickhouse/clickhouse-connection.js';
import { collectorLimitsShape, withCollectorLimitsChecked } from '../../libs/config/collector-limits.js';
import { adminApiConfigShape, envBoolean, envOptionalString } from '../../libs/config/env.js';

export const embeddedConfigSchema = withCollectorLimitsChecked(
  z.object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    /** unset: the operator routes share PORT; set: they listen apart (0 = any free port) */
    ADMIN_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    HOST: z.string().default('127.0.0.1'),
    TRACKLANE_DATA_DIR: z.string().default('./data'),
    /** unset → chDB on TRACKLANE_DATA_DIR; set → a ClickHouse server over HTTP */
    CLICKHOUSE_URL: envOptionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    /** user, password (or password file) and CA file (libs/clickhouse/clickhouse-connection.ts) */
    ...clickhouseConnectionShape,
    CLICKHOUSE_DATABASE: envOptionalString,
    /** the server's read-only analyst user for tenant queries (schemas/clickhouse-server/analyst-user.sql) */
    ...clickhouseAnalystShape,
    /** `tracklane migrate` against a ClickHouse cluster (cluster-form DDL); embedded runs never use it */
    CLICKHOUSE_CLUSTER: envOptionalString,
    TRACKLANE_MASTER_KEY: envOptionalString,
    /** keyed hashes of subject ids (libs/privacy/subject-hash.ts); unset → a key kept in the data dir */
    TRACKLANE_ID_HASH_KEY: envOptionalString,
    TRACKLANE_ADMIN_TOKEN: envOptionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    GEOIP_DB: envOptionalString,
    ASN_DB: envOptionalString,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    SINK_MAX_ROWS: z.coerce.number().int().min(1).default(5000),
    SINK_MAX_AGE_MS: z.coerce.number().int().min(1).default(50),
    /** sink flushes in flight at once (group commits: each request's answer waits for its flush) */
    SINK_MAX_CONCURRENT_FLUSHES: z.coerce.number().int().min(1).default(2),
    /** request and event sizes, events per batch, trusted proxies (libs/config/collector-limits.ts) */
    ...collectorLimitsShape,
    MIGRATE_ON_START: envBoolean(true),
    ...adminApiConfigShape,
    /** serves the web tag's test page at /tag/test-page (tests and demos only) */
    TRACKLANE_TAG_TEST_PAGE: envBoolean(false),
  }),
);

export type EmbeddedConfig = z.infer<typeof embeddedConfigSchema>;
