// `tracklane demo`: starts the embedded pipeline on a temporary data dir, sends synthetic
// traffic for two tenants through the HTTP API (one switches anonymization on halfway),
// then reads ClickHouse back and prints a summary checked against what was sent.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pino } from 'pino';
import { toNumber } from '../../libs/clickhouse/client.js';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../embedded/embedded-runner.js';
import { createProgressBar, sendTraffic } from './send.js';
import type { ExpectedSummary } from './expected-summary.js';
import { generateTraffic } from './traffic.js';

export interface DemoOptions {
  events: number;
  seed: number;
  keep: boolean;
  out: Writable;
  err: Writable;
}

const TENANTS = ['demo-shop', 'demo-saas'];

export async function runDemo(opts: DemoOptions): Promise<boolean> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tracklane-demo-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    HOST: '127.0.0.1',
    TRACKLANE_DATA_DIR: dataDir,
    // NOTE: throwaway secrets for a throwaway data dir; never printed.
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'warn',
  });
  const logger = createLogger({ level: 'warn', destination: pino.destination(2) });
  const say = (line = '') => opts.out.write(`${line}\n`);

  say(`Tracklane demo: embedded pipeline on ${dataDir} (chDB), ${opts.events.toLocaleString('en')} events, seed ${opts.seed}`);
  const started = Date.now();
  const server = await startEmbedded(config, logger);
  try {
    const writeKeys: Record<string, string> = {};
    for (const tenant of TENANTS) {
      const { writeKey } = await admin(server, 'PUT', `/v1/admin/tenants/${tenant}`);
      // NOTE: the data dir is fresh, so each tenant is created here and the answer carries its key.
      if (typeof writeKey !== 'string') throw new Error(`creating tenant ${tenant} answered without a write key`);
      writeKeys[tenant] = writeKey;
    }

    const traffic = generateTraffic({ seed: opts.seed, events: opts.events, tenants: TENANTS, startMs: Date.now() });
    const switchTenant = traffic.expected.anonymization.tenant;
    const bar = createProgressBar(traffic.expected.totalEvents, opts.err);
    const stats = await sendTraffic({
      baseUrl: server.url,
      writeKeys,
      batches: traffic.batches,
      barriers: [traffic.switchIndex],
      beforeBatch: async (i) => {
        if (i === traffic.switchIndex) await admin(server, 'PATCH', `/v1/admin/tenants/${switchTenant}/flags`, { anonymizeIdentity: true });
      },
      onProgress: (sent) => bar.update(sent),
    });
    bar.stop();
    const seconds = stats.elapsedMs / 1000;
    say(`sent ${stats.events.toLocaleString('en')} events in ${stats.batches} batches in ${seconds.toFixed(1)} s ` +
      `(${Math.round(stats.events / seconds).toLocaleString('en')} events/s; ${stats.retries} retries, ${stats.rejected} rejected)`);
    say(`${switchTenant} switched anonymizeIdentity on before batch ${traffic.switchIndex}`);

    const stored = await readSummary(server);
    const checks = compare(traffic.expected, stored, stats.rejected);
    printSummary(say, stored);
    say();
    for (const c of checks) say(`${c.ok ? '✓' : '✗'} ${c.text}`);
    const passed = checks.every((c) => c.ok);
    say();
    say(passed ? `demo passed in ${((Date.now() - started) / 1000).toFixed(1)} s: ClickHouse holds exactly what was sent` : 'demo FAILED: see ✗ above');
    return passed;
  } finally {
    await server.stop();
    if (opts.keep) say(`data kept in ${dataDir} (TRACKLANE_DATA_DIR=${dataDir} npm start to look at it)`);
    else await rm(dataDir, { recursive: true, force: true });
  }
}

async function admin(server: EmbeddedServer, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path} failed with ${res.status}: ${String(json['message'])}`);
  return json;
}

interface StoredSummary {
  total: number;
  byType: Record<string, number>;
  byTenant: Record<string, number>;
  byCountry: Record<string, number>;
  accounts: { tenant: string; accountId: string; source: string }[];
  identities: { tenant: string; anonymized: boolean; events: number; users: number }[];
  emailsInUrls: number;
  users: number;
}

async function readSummary(server: EmbeddedServer): Promise<StoredSummary> {
  const q = async (sql: string) => (await server.analystQuery(sql)) as Record<string, unknown>[];
  const counts = async (sql: string) =>
    Object.fromEntries((await q(sql)).map((r) => [String(r['k'] ?? '(none)'), toNumber(r['n'])]));

  const byTenant = await counts('SELECT tenant_id AS k, count() AS n FROM events FINAL GROUP BY k ORDER BY k');
  return {
    total: Object.values(byTenant).reduce((a, b) => a + b, 0),
    byTenant,
    byType: await counts('SELECT type AS k, count() AS n FROM events FINAL GROUP BY k ORDER BY n DESC'),
    byCountry: await counts('SELECT geo_country AS k, count() AS n FROM events FINAL GROUP BY k ORDER BY n DESC'),
    accounts: (await q('SELECT tenant_id, account_id, source FROM accounts FINAL ORDER BY tenant_id, source, account_id')).map((r) => ({
      tenant: String(r['tenant_id']),
      accountId: String(r['account_id']),
      source: String(r['source']),
    })),
    identities: (
      await q(`SELECT tenant_id, identity_anonymized, count() AS n, uniqExact(user_id) AS u
               FROM events FINAL WHERE user_id IS NOT NULL GROUP BY tenant_id, identity_anonymized ORDER BY tenant_id, identity_anonymized`)
    ).map((r) => ({
      tenant: String(r['tenant_id']),
      anonymized: toNumber(r['identity_anonymized']) === 1,
      events: toNumber(r['n']),
      users: toNumber(r['u']),
    })),
    emailsInUrls: toNumber(
      (await q(`SELECT count() AS n FROM events FINAL
                WHERE match(concat(ifNull(url, ''), ' ', ifNull(referrer, ''), ' ', ifNull(search, '')), '@|%40')`))[0]?.['n'] ?? 0,
    ),
    users: toNumber((await q('SELECT count() AS n FROM users FINAL'))[0]?.['n'] ?? 0),
  };
}

interface Check {
  ok: boolean;
  text: string;
}

function compare(expected: ExpectedSummary, stored: StoredSummary, rejected: number): Check[] {
  const anon = expected.anonymization;
  const idRow = (tenant: string, anonymized: boolean) => stored.identities.find((r) => r.tenant === tenant && r.anonymized === anonymized);
  const inferred = (tenant: string) =>
    stored.accounts.filter((a) => a.tenant === tenant && a.source === 'email_domain').map((a) => a.accountId).sort();
  const checks: Check[] = [
    { ok: rejected === 0, text: `no event rejected by the collector (${rejected})` },
    { ok: stored.total === expected.totalEvents, text: `events stored = events sent (${stored.total} / ${expected.totalEvents})` },
    { ok: sameCounts(stored.byType, expected.byType), text: 'events by type match what was sent' },
    { ok: sameCounts(stored.byTenant, expected.byTenant), text: 'events by tenant match what was sent' },
    { ok: sameCounts(stored.byCountry, expected.byCountry), text: 'events by country (geo from IP) match the IPs sent' },
    {
      ok: Object.entries(expected.inferredAccountsByTenant).every(([t, domains]) => sameList(inferred(t), domains)),
      text: 'accounts inferred from email domains = the company domains sent (none from free-mail)',
    },
    { ok: stored.emailsInUrls === 0, text: `no email left in stored URLs (${expected.messagesWithEmailInUrl} sent with one)` },
    {
      ok: anon.clearTenants.every((t) => idRow(t, true) === undefined),
      text: `no pseudonymized identity for ${anon.clearTenants.join(', ')} (never switched on)`,
    },
    {
      ok: (idRow(anon.tenant, false)?.events ?? 0) === anon.identifiedEventsBefore &&
        (idRow(anon.tenant, true)?.events ?? 0) === anon.identifiedEventsAfter,
      text: `${anon.tenant}: ${anon.identifiedEventsBefore} identified events before the switch in clear, ` +
        `${anon.identifiedEventsAfter} after it pseudonymized`,
    },
  ];
  return checks;
}

function printSummary(say: (line?: string) => void, s: StoredSummary): void {
  say();
  say('ClickHouse (events FINAL):');
  say(`  events by type:    ${fmt(s.byType)}`);
  say(`  events by tenant:  ${fmt(s.byTenant)}`);
  say(`  top countries:     ${fmt(Object.fromEntries(Object.entries(s.byCountry).slice(0, 8)))}`);
  const inferred = s.accounts.filter((a) => a.source === 'email_domain');
  say(`  inferred accounts: ${inferred.length} from email domains (${inferred.slice(0, 6).map((a) => a.accountId).join(', ')}${inferred.length > 6 ? ', …' : ''}), ` +
    `${s.accounts.length - inferred.length} explicit`);
  say(`  users:             ${s.users} identified users`);
  for (const r of s.identities) {
    say(`  identities:        ${r.tenant} ${r.anonymized ? 'pseudonymized' : 'in clear     '} ${r.events} events, ${r.users} distinct ids`);
  }
}

function fmt(counts: Record<string, number>): string {
  return Object.entries(counts).map(([k, n]) => `${k} ${n.toLocaleString('en')}`).join(', ');
}

function sameCounts(actual: Record<string, number>, expected: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  return [...keys].every((k) => (actual[k] ?? 0) === (expected[k] ?? 0));
}

function sameList(actual: string[], expected: string[]): boolean {
  const e = [...new Set(expected)].sort();
  return actual.length === e.length && actual.every((v, i) => v === e[i]);
}
