// `npm run faults -- <scenario> [--cycles N] [--rate N]`: the fleet as separate processes on the
// real Kafka, registry, Redis and ClickHouse gateway, a load generator keeping a ledger of every
// acknowledged event, a scheduled fault, and the check of ClickHouse against the ledger (issue
// 13). Scenarios so far: broker-restart (kill -9 of the broker, restarted after a pause, under
// load). Prints the schedule, then one line per fault and the figures; exits 1 on any loss,
// duplicate through FINAL or worker exit (no supervisor restarts anything: delivery must resume
// by itself).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient } from '@clickhouse/client';
import { clickhousePassword, clickhouseUser } from '../services/clickhouse-gateway.js';
import { repoRoot } from '../services/paths.js';
import { endpointsToEnv, ensureServices, startKafka, stopServices } from '../services/services.js';
import { readState } from '../services/state.js';
import { startFleet, type Fleet } from '../../test/support/fleet.js';
import { checkLedger, startLoad, storedCount } from './ledger.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (s: string) => process.stdout.write(`${s}\n`);

async function killBroker(): Promise<void> {
  const record = (await readState()).services.kafka;
  if (!record) throw new Error('the broker was not started by scripts/services: the harness cannot kill it');
  process.kill(record.pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(record.pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  throw new Error(`broker pid ${record.pid} did not die`);
}

interface BrokerRestartOptions {
  cycles: number;
  rate: number;
  upMs: number;
  downMs: number;
}

async function brokerRestart(fleet: Fleet, opts: BrokerRestartOptions): Promise<boolean> {
  out(`broker-restart: ${opts.cycles} cycles under ${opts.rate} events/s — ${opts.upMs / 1000} s up, kill -9, ${opts.downMs / 1000} s down, restart (same log dir)`);
  const ch = createClient({ url: process.env.CLICKHOUSE_URL, username: clickhouseUser, password: clickhousePassword });
  const tenantId = `faults-${fleet.prefix.slice(1, 9)}`;
  const created = await fleet.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
  if (created.status !== 201) throw new Error(`tenant not created (${created.status})`);
  const load = startLoad({ url: fleet.collectorUrl(), writeKey: created.body.writeKey, idPrefix: 'br-', eventsPerSec: opts.rate });
  const recoveries: number[] = [];
  try {
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      await sleep(opts.upMs);
      await killBroker();
      await sleep(opts.downMs);
      await startKafka();
      const faultEnd = Date.now();
      const ackedAtEnd = load.acknowledged.length;
      let recovered: number | null = null;
      while (Date.now() - faultEnd < 180_000) {
        if ((await storedCount(ch, tenantId).catch(() => -1)) >= ackedAtEnd) {
          recovered = Date.now() - faultEnd;
          break;
        }
        await sleep(500);
      }
      if (recovered !== null) recoveries.push(recovered);
      const exited = [...fleet.processes.entries()].filter(([, p]) => p.exitStatus() !== null).map(([k, p]) => `${k} (${p.exitStatus()})`);
      out(`  cycle ${cycle}: acknowledged ${load.acknowledged.length}, recovery ${recovered === null ? 'NONE within 180 s' : `${(recovered / 1000).toFixed(1)} s`}${exited.length ? `, exited: ${exited.join(', ')}` : ''}`);
      if (recovered === null) break;
    }
  } finally {
    await load.stop();
  }
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline && (await storedCount(ch, tenantId)) < load.acknowledged.length) await sleep(1_000);
  const check = await checkLedger(ch, tenantId, load.acknowledged);
  await ch.close();
  const exits = [...fleet.processes.entries()].filter(([, p]) => p.exitStatus() !== null).map(([k, p]) => ({ process: k, status: p.exitStatus() }));
  // consumers the workers rebuilt in process (KafkaJS gave up on them), per process
  const rebuilds: Record<string, number> = {};
  for (const [k, p] of fleet.processes) {
    if (p.exitStatus() !== null) continue;
    const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text().catch(() => '');
    const n = text.split('\n').filter((l) => l.startsWith('tracklane_consumer_rebuilds_total{')).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    if (n > 0) rebuilds[k] = n;
  }
  const report = {
    scenario: 'broker-restart',
    ...opts,
    acknowledged: check.acknowledged,
    lost: check.lost.length,
    duplicatedThroughFinal: check.duplicated.length,
    physicalCopies: check.physicalCopies,
    refused: Object.fromEntries(load.refused),
    recoveryMs: { max: Math.max(0, ...recoveries), median: recoveries.sort((a, b) => a - b)[Math.floor(recoveries.length / 2)] ?? null },
    workerExits: exits,
    consumerRebuilds: rebuilds,
  };
  const dir = join(repoRoot, '.faults');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `broker-restart-${Date.now()}.json`), `${JSON.stringify({ ...report, lostIds: check.lost.slice(0, 1000), duplicatedIds: check.duplicated }, null, 2)}\n`);
  out(JSON.stringify(report, null, 2));
  const passed = report.lost === 0 && report.duplicatedThroughFinal === 0 && exits.length === 0 && recoveries.length === opts.cycles;
  if (!passed) out(`FAILED\n${check.lost.length ? `lost (first 20): ${check.lost.slice(0, 20).join(', ')}\n` : ''}${await fleet.diagnostics()}`);
  return passed;
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { cycles: { type: 'string', default: '20' }, rate: { type: 'string', default: '300' }, up: { type: 'string', default: '12' }, down: { type: 'string', default: '4' } },
  });
  const scenario = positionals[0] ?? 'broker-restart';
  if (scenario !== 'broker-restart') {
    process.stderr.write(`faults: unknown scenario ${scenario} (known: broker-restart)\n`);
    return 2;
  }
  const services = await ensureServices({ fresh: false });
  Object.assign(process.env, endpointsToEnv(services), { CLICKHOUSE_USER: clickhouseUser, CLICKHOUSE_PASSWORD: clickhousePassword });
  try {
    const fleet = await startFleet({ partitions: 3 });
    try {
      const passed = await brokerRestart(fleet, { cycles: Number(values.cycles), rate: Number(values.rate), upMs: Number(values.up) * 1000, downMs: Number(values.down) * 1000 });
      out(passed ? 'broker-restart: PASSED' : 'broker-restart: FAILED');
      return passed ? 0 : 1;
    } finally {
      await fleet.stopAll();
    }
  } finally {
    // NOTE: leave nothing running that this run started — the broker it restarted included (a
    // later test run would reuse them; a clean-clone CI then found no SASL credentials of its own)
    await stopServices({ only: services.started.includes('kafka') ? services.started : [...services.started, 'kafka'] }).catch(() => undefined);
  }
}

process.exitCode = await main();
