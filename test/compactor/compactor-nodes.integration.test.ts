// The compactor on a target of several nodes (what a ClickHouse cluster is to it): every node
// gets the round's lookup tables through its own connection and is checked to hold them before
// any mutation runs; mutations and merges go through the target's statement form; a node that
// missed the batch fails the round closed. No ClickHouse cluster runs here (no server, no
// Keeper): the "nodes" are connections to one real chDB engine, so the data path is real and
// the fan-out is observed on the connections. The cluster statement texts are checked in
// libs/clickhouse/cluster-ddl.test.ts and parsed by the engine in test/packaging.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { createLogger } from '../../libs/core/logger.js';
import { clusterHosts, nodeUrls } from '../../libs/compactor/cluster-nodes.js';
import { createCompactor } from '../../libs/compactor/compactor.js';
import { singleNodeTarget, type CompactorTarget } from '../../libs/compactor/compactor-target.js';
import { subjectHasher } from '../../libs/privacy/subject-hash.js';
import type { OverwriteCommand } from '../../libs/events/overwrite-command.js';
import { createClickHouseSink } from '../../libs/sink/clickhouse-sink.js';
import { identifyEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';
import { grepEveryColumn } from '../support/grep-tables.js';

const ch = useTestClickHouse();
const logger = createLogger({ level: 'silent' });
const subjectHash = subjectHasher(randomBytes(32));
const LOOKUPS = ['overwrite_join', 'overwrite_keys', 'overwrite_delete_keys', 'overwrite_suppress_keys', 'overwrite_erase_keys'];

interface Call {
  on: string;
  kind: 'command' | 'insert' | 'query';
  text: string;
}

/** The real client, with every call it gets recorded (and inserts into `drop` swallowed). */
function recording(client: ClickHouseClient, on: string, calls: Call[], drop: ReadonlySet<string> = new Set()): ClickHouseClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'command' || prop === 'query') {
        return (params: { query: string }) => {
          calls.push({ on, kind: prop, text: params.query });
          return prop === 'command' ? target.command(params as Parameters<ClickHouseClient['command']>[0]) : target.query(params as Parameters<ClickHouseClient['query']>[0]);
        };
      }
      if (prop === 'insert') {
        return (params: { table: string }) => {
          calls.push({ on, kind: 'insert', text: params.table });
          if (drop.has(params.table)) return Promise.resolve({ executed: true, query_id: 'dropped' });
          return target.insert(params as Parameters<ClickHouseClient['insert']>[0]);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

/** Two nodes; mutations, merges and KILL MUTATION run on an executor connection ('exec'). */
function twoNodes(calls: Call[], dropOnB: ReadonlySet<string> = new Set()): CompactorTarget {
  const base = singleNodeTarget(recording(ch().client, 'exec', calls));
  return { ...base, nodes: [recording(ch().client, 'A', calls), recording(ch().client, 'B', calls, dropOnB)] };
}

async function load(tenant: string, user: string, email: string): Promise<void> {
  const sink = createClickHouseSink({ client: ch().client, logger });
  await sink.write([
    identifyEvent({ tenant_id: tenant, event_id: `${user}-i1`, user_id: user, received_at: Date.now() - 60_000, traits: { email: JSON.stringify(email), plan: '"pro"' } }),
  ]);
  await sink.stop();
}

const command = (tenant: string, user: string, set: Record<string, string>): OverwriteCommand => ({
  request_id: `req-${uniqueTenant('n')}`,
  tenant_id: tenant,
  subject: 'user',
  id: user,
  set,
  mode: 'overwrite',
  delete_events: false,
  suppress: false,
  requested_at: Date.now(),
  insert_missing: null,
});

const isRewrite = (c: Call) => c.on === 'exec' && /^(ALTER TABLE|OPTIMIZE TABLE)/.test(c.text);

describe('compactor on several nodes', () => {
  it('fills and checks the lookup tables on every node before any mutation, which the target runs', async () => {
    const tenant = uniqueTenant();
    await load(tenant, 'n1', 'old.n1@example.org');
    const calls: Call[] = [];
    const main = recording(ch().client, 'main', calls);
    const compactor = createCompactor({ client: main, target: twoNodes(calls), subjectHash, logger });

    const [receipt] = await compactor.apply([command(tenant, 'n1', { email: 'new.n1@example.org' })]);
    expect(receipt?.status).toBe('verified');
    expect(await grepEveryColumn((sql) => queryRows(ch().client, sql), ['old.n1@example.org'])).toEqual([]);

    const firstRewrite = calls.findIndex(isRewrite);
    expect(firstRewrite).toBeGreaterThan(0);
    const before = calls.slice(0, firstRewrite);
    for (const node of ['A', 'B']) {
      for (const t of LOOKUPS) expect(before, `${node} empties ${t}`).toContainEqual({ on: node, kind: 'command', text: `TRUNCATE TABLE default.${t}` });
      for (const t of ['overwrite_join', 'overwrite_keys']) expect(before, `${node} gets ${t}`).toContainEqual({ on: node, kind: 'insert', text: t });
      expect(before.some((c) => c.on === node && c.kind === 'query' && c.text.includes('FROM system.tables')), `${node} is checked`).toBe(true);
    }
    // the main connection never stages a lookup table, mutates or merges itself: the target does
    expect(calls.filter((c) => c.on === 'main' && (c.kind === 'insert' ? LOOKUPS.includes(c.text) : /^(TRUNCATE|ALTER|OPTIMIZE)/.test(c.text)))).toEqual([]);
    const rewrites = calls.filter(isRewrite);
    expect(rewrites.map((c) => c.text.split(' ').slice(0, 4).join(' '))).toEqual(['ALTER TABLE default.identify_snapshots UPDATE', 'OPTIMIZE TABLE default.users FINAL']);
    // after the round every node's lookup tables are emptied again
    const after = calls.slice(calls.findLastIndex(isRewrite));
    for (const node of ['A', 'B']) expect(after.filter((c) => c.on === node && /^TRUNCATE/.test(c.text)).length).toBeGreaterThanOrEqual(LOOKUPS.length);
  });

  it('a node that misses the batch fails the round closed: no mutation runs, the receipt says why without PII', async () => {
    const tenant = uniqueTenant();
    await load(tenant, 'n2', 'old.n2@example.org');
    const calls: Call[] = [];
    const main = recording(ch().client, 'main', calls);
    const compactor = createCompactor({ client: main, target: twoNodes(calls, new Set(['overwrite_join'])), subjectHash, logger, maxAttempts: 2 });
    const cmd = command(tenant, 'n2', { email: 'new.n2@example.org' });

    const [receipt] = await compactor.apply([cmd]);
    expect(receipt).toMatchObject({ status: 'failed', attempts: 2 });
    expect(receipt?.reason).toMatch(/^verification failed: node \d of 2 holds 0 rows of overwrite_join, not the batch's 1$/);
    expect(calls.filter(isRewrite)).toEqual([]);
    // after each failed attempt, before the lookup tables change again: unfinished mutations stopped
    expect(calls.filter((c) => c.on === 'exec' && c.text.startsWith('KILL MUTATION'))).toHaveLength(2);
    // nothing was rewritten: the old value is where it was, the new one nowhere in events
    const [row] = await queryRows<{ email: string }>(ch().client, `SELECT traits['email'] AS email FROM identify_snapshots WHERE tenant_id = {t:String}`, { t: tenant });
    expect(row?.email).toBe('"old.n2@example.org"');

    // with both nodes healthy the same command goes through
    const [ok] = await createCompactor({ client: ch().client, target: twoNodes([]), subjectHash, logger }).apply([cmd]);
    expect(ok).toMatchObject({ status: 'verified', attempts: 3 });
  });

  it('finds a cluster\'s nodes in system.clusters, and refuses a cluster the server does not define', async () => {
    // chDB defines no cluster (no remote_servers): the start-up check of a misnamed cluster
    const hosts = await clusterHosts(ch().client, 'tracklane');
    expect(hosts).toEqual([]);
    expect(() => nodeUrls(hosts, { cluster: 'tracklane', baseUrl: 'http://127.0.0.1:8123' })).toThrow(/has no such cluster in system\.clusters/);
  });
});
