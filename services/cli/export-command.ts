// `tracklane export user ID --tenant T [--out FILE]`: a user's subject access export
// (libs/privacy/subject-export.ts) as NDJSON, read straight from storage — the embedded data
// dir (chDB, or CLICKHOUSE_URL) with its tenants file, or with --fleet a fleet's ClickHouse
// and Redis — with counts on stderr as it goes. The file is written beside its final name and
// renamed once complete; the export is recorded in the audit log like the API's.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { z } from 'zod';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import { closeRedis, openRedis } from '../../libs/config/redis-connection.js';
import { openFileKeyStore, redisKeyStore } from '../../libs/privacy/key-stores.js';
import { toolKeyRing, type WrappedKeyStore } from '../../libs/privacy/stored-keys.js';
import type { Redis } from 'ioredis';
import { createAuditLog } from '../../libs/audit/audit-log.js';
import { createClickHouse, type ClickHouseClient } from '../../libs/clickhouse/client.js';
import { clickhouseConfigFrom, clickhouseConnectionShape } from '../../libs/clickhouse/clickhouse-connection.js';
import { anonymizedTenants } from '../../libs/compactor/history-scans.js';
import { pseudonymAliases } from '../../libs/compactor/pseudonym-aliases.js';
import { ConfigError, envBoolean, envOptionalString, parseEnv } from '../../libs/config/env.js';
import { redisConnectionShape } from '../../libs/config/redis-connection.js';
import { createLogger, type Logger } from '../../libs/core/logger.js';
import { ndjsonWriter } from '../../libs/privacy/export-writer.js';
import { checkSubjectId, openSubjectExport, SubjectIdError, userAliases, type ExportCounts, type ExportSummary } from '../../libs/privacy/subject-export.js';
import { clickhouseExportSource } from '../../libs/privacy/subject-export-source.js';
import { dataDirIdHashKey, parseIdHashKey, subjectHasher, type SubjectHash } from '../../libs/privacy/subject-hash.js';
import { openFileTenantStore } from '../../libs/tenants/file-tenant-store.js';
import type { TenantFlags } from '../../libs/tenants/flags.js';
import { openRedisTenantStore } from '../../libs/tenants/redis-tenant-store.js';
import { EXPORT_AUDIT_ACTION } from '../collector/export-routes.js';

export const exportConfigSchema = z.object({
  TRACKLANE_DATA_DIR: z.string().default('./data'),
  /** unset → chDB on TRACKLANE_DATA_DIR; required with --fleet */
  CLICKHOUSE_URL: envOptionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  ...clickhouseConnectionShape,
  CLICKHOUSE_DATABASE: envOptionalString,
  /** finds history stored under pseudonyms; required when the tenant has any */
  TRACKLANE_MASTER_KEY: envOptionalString,
  /** the receipts' keyed hash; embedded default: the data dir's key; required with --fleet */
  TRACKLANE_ID_HASH_KEY: envOptionalString,
  /** --fleet: where the tenants and their flags are */
  ...redisConnectionShape,
  TRACKLANE_REDIS_PREFIX: z.string().default('tracklane:'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
  /** no progress lines (tests) */
  TRACKLANE_QUIET: envBoolean(false),
});
export type ExportConfig = z.infer<typeof exportConfigSchema>;

export interface ExportCommandOptions {
  userId: string;
  tenant: string;
  out?: string;
  fleet: boolean;
}

export interface ExportIo {
  stdout: Writable;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

interface Storage {
  client: ClickHouseClient;
  flags: (tenantId: string) => TenantFlags | undefined;
  /** where the wrapped pseudonym keys are: the data dir's key file, or the fleet's Redis */
  keyStore: () => Promise<WrappedKeyStore>;
  subjectHash: SubjectHash;
  close(): Promise<void>;
}

async function openStorage(config: ExportConfig, fleet: boolean, logger: Logger): Promise<Storage> {
  const dataDir = resolve(config.TRACKLANE_DATA_DIR);
  if (fleet) {
    if (!config.CLICKHOUSE_URL) throw new ConfigError('--fleet needs CLICKHOUSE_URL (the fleet\'s ClickHouse) and REDIS_URL (its tenants)');
    if (!config.TRACKLANE_ID_HASH_KEY) throw new ConfigError('--fleet needs TRACKLANE_ID_HASH_KEY (the fleet\'s, to find the receipts)');
  }
  const key = config.TRACKLANE_ID_HASH_KEY !== undefined ? parseIdHashKey(config.TRACKLANE_ID_HASH_KEY) : dataDirIdHashKey(dataDir);
  const subjectHash = subjectHasher(key);
  key.fill(0);
  const tenants = fleet
    ? await openRedisTenantStore({ redis: config, keyPrefix: config.TRACKLANE_REDIS_PREFIX, logger, pubsub: false })
    : await openFileTenantStore({ path: join(dataDir, 'tenants.json') });
  const client = createClickHouse(clickhouseConfigFrom(config, { chdbDir: join(dataDir, 'clickhouse'), logger }));
  let redis: Redis | null = null;
  return {
    client,
    flags: (t) => tenants.get(t),
    keyStore: async () => {
      if (!fleet) return openFileKeyStore(join(dataDir, 'pseudonym-keys.json'));
      redis ??= openRedis(config, 'export-keys', { lazyConnect: false, maxRetriesPerRequest: 2 });
      return redisKeyStore(redis, config.TRACKLANE_REDIS_PREFIX);
    },
    subjectHash,
    close: async () => {
      await client.close();
      await tenants.close();
      if (redis) await closeRedis(redis);
    },
  };
}

/** One line of counts, for the terminal or a log. */
export function progressLine(c: Readonly<ExportCounts>): string {
  return `exported ${c.events} events (${c.eventsStoredAs.clear} in clear, ${c.eventsStoredAs.pseudonym} pseudonymized), ${c.profiles} profiles, ${c.accounts} accounts, ${c.receipts} receipts`;
}

/** Runs one export; resolves to its summary. ConfigError for usage errors (exit 2). */
export async function executeExport(opts: ExportCommandOptions, env: Record<string, string | undefined>, io: ExportIo): Promise<ExportSummary> {
  try {
    checkSubjectId(opts.userId);
  } catch (err) {
    throw err instanceof SubjectIdError ? new ConfigError(err.message) : err;
  }
  const config = parseEnv(exportConfigSchema, env);
  const logger = createLogger({ level: config.LOG_LEVEL });
  const storage = await openStorage(config, opts.fleet, logger);
  try {
    const flags = storage.flags(opts.tenant);
    if (!flags) throw new ConfigError(`tenant "${opts.tenant}" does not exist`);
    const master = config.TRACKLANE_MASTER_KEY !== undefined ? parseMasterKey(config.TRACKLANE_MASTER_KEY) : null;
    // NOTE: the stored key versions are read from the key store; shredded ones are refused
    const keys = master ? await toolKeyRing({ masterKey: master, store: await storage.keyStore(), flags: { get: storage.flags }, tenantId: opts.tenant }) : null;
    master?.fill(0);
    if (!keys && (flags.anonymizeIdentity || (await hasPseudonymizedHistory(storage.client, opts.tenant)))) {
      throw new ConfigError(`TRACKLANE_MASTER_KEY is required: tenant "${opts.tenant}" stores history under pseudonyms, which only the key finds`);
    }
    const aliasesOf = keys ? userAliases(pseudonymAliases(keys, storage.flags)) : () => [];
    const exp = await openSubjectExport({
      tenantId: opts.tenant,
      userId: opts.userId,
      aliases: aliasesOf(opts.tenant, opts.userId),
      subjectHash: storage.subjectHash,
      source: clickhouseExportSource(storage.client),
    });
    const say = config.TRACKLANE_QUIET ? () => undefined : (c: Readonly<ExportCounts>) => io.stderr.write(io.stderr.isTTY ? `\r${progressLine(c)}` : `${progressLine(c)}\n`);
    const audit = (complete: boolean) =>
      createAuditLog({ client: storage.client, logger }).record({
        at: Date.now(),
        tenantId: opts.tenant,
        credentialKind: 'operator',
        keyId: 'cli',
        action: EXPORT_AUDIT_ACTION,
        requestId: randomUUID(),
        status: complete ? 200 : 500,
        source: '127.0.0.1',
        details: { subjectIdHash: storage.subjectHash(opts.tenant, opts.userId), complete: String(complete), events: String(exp.counts.events), receipts: String(exp.counts.receipts), via: 'cli' },
      });

    const partial = opts.out === undefined ? null : `${opts.out}.partial`;
    // NOTE: the export is the subject's personal data: readable by its owner only
    const out = partial === null ? io.stdout : createWriteStream(partial, { mode: 0o600 });
    try {
      const summary = await exp.run(ndjsonWriter(out), say);
      if (partial !== null && opts.out !== undefined) {
        await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
        await rename(partial, opts.out);
      }
      if (!config.TRACKLANE_QUIET) io.stderr.write(`${io.stderr.isTTY ? '\r' : ''}${progressLine(summary)}: done${opts.out ? ` → ${opts.out}` : ''}\n`);
      await audit(true);
      return summary;
    } catch (err) {
      if (partial !== null) {
        out.destroy();
        await rm(partial, { force: true });
      }
      await audit(false);
      throw err;
    }
  } finally {
    await storage.close();
  }
}

async function hasPseudonymizedHistory(client: ClickHouseClient, tenantId: string): Promise<boolean> {
  const cmd = { request_id: 'export', tenant_id: tenantId, subject: 'user' as const, id: '', set: {}, mode: 'overwrite' as const, delete_events: false, suppress: false, requested_at: 0, insert_missing: null };
  return (await anonymizedTenants(client, [cmd])).has(tenantId);
}

export function registerExportCommand(program: Command): void {
  const exp = program.command('export').description('export what is stored of a subject (GDPR Art. 15/20) as NDJSON');
  exp
    .command('user')
    .description(
      "a user's profile, linked accounts, events (in clear and pseudonymized) and overwrite/erasure receipts, one JSON record per line, a summary line last; " +
        'reads the embedded data dir (TRACKLANE_DATA_DIR; CLICKHOUSE_URL for a server), or with --fleet CLICKHOUSE_URL and REDIS_URL; TRACKLANE_MASTER_KEY finds pseudonymized history',
    )
    .argument('<id>', 'the user id, exactly as sent (never trimmed)')
    .requiredOption('--tenant <tenantId>', 'the tenant')
    .option('--out <file>', 'write to this file (mode 0600; renamed into place once complete) instead of stdout')
    .option('--fleet', "read a fleet's storage: tenants from Redis (REDIS_URL), TRACKLANE_ID_HASH_KEY required", false)
    .action(async (id: string, opts: { tenant: string; out?: string; fleet: boolean }) => {
      await executeExport({ userId: id, tenant: opts.tenant, fleet: opts.fleet, ...(opts.out !== undefined ? { out: opts.out } : {}) }, process.env, { stdout: process.stdout, stderr: process.stderr });
    });
}
