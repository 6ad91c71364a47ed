// The faults the harness injects, on the services scripts/services started: the
// broker killed or frozen, the ClickHouse gateway killed, Redis stopped, replicas scaled. Each leaves the
// service as it found it: started again on the same data, answering.
import { readState } from '../services/state.js';
import { startKafka, startService, type ServiceName } from '../services/services.js';
import type { FleetServiceName } from '../../test/support/fleet.js';
import { sleep, type FaultRun } from './harness.js';

async function recordedPid(name: ServiceName): Promise<number> {
  const record = (await readState()).services[name];
  if (!record) throw new Error(`${name} was not started by scripts/services: the harness cannot fault it`);
  return record.pid;
}

async function killAndWait(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  throw new Error(`pid ${pid} did not die after SIGKILL`);
}

/** kill -9 of the broker, `downMs` without it, then started again on the same log dir. */
export async function restartBroker(downMs: number): Promise<void> {
  await killAndWait(await recordedPid('kafka'));
  await sleep(downMs);
  await startKafka();
}

/** SIGSTOP of the broker for `ms` (connections stay open, nothing answers), then SIGCONT. */
export async function hangBroker(ms: number): Promise<void> {
  const pid = await recordedPid('kafka');
  process.kill(pid, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

/** kill -9 of the ClickHouse gateway, `downMs` without it, then started again on its data. */
export async function restartClickHouse(downMs: number): Promise<void> {
  await killAndWait(await recordedPid('clickhouse'));
  await sleep(downMs);
  await startService('clickhouse', { fresh: false });
}

/**
 * The enricher and anonymizer scaled 1 → 3 for `holdMs`, then back to 1 by SIGTERM of the two
 * extra replicas of each (a graceful scale-down), as an autoscaler does.
 */
export async function scaleOutAndIn(run: FaultRun, holdMs: number): Promise<void> {
  const scaled: FleetServiceName[] = ['enricher', 'anonymizer'];
  const keys = scaled.flatMap((name) => [2, 3].map((i) => ({ name, key: `${name}-${i}` })));
  await Promise.all(keys.map(({ name, key }) => run.fleet.start(name, key)));
  await sleep(holdMs);
  const extra = keys.map(({ key }) => run.fleet.processes.get(key)).filter((p) => p !== undefined);
  for (const p of extra) {
    run.expectedExits.add(p.pid);
    p.kill('SIGTERM');
  }
  await Promise.all(extra.map((p) => p.exited));
}

/** The fleet's Redis stopped for `ms` (its append-only file kept), then started again. */
export async function stopRedisFor(run: FaultRun, ms: number): Promise<void> {
  await run.redis.stop();
  await sleep(ms);
  await run.redis.start();
}

/** Every answer of the gateway to the fleet delayed by `delayMs`, for `ms`. */
export async function slowClickHouse(run: FaultRun, delayMs: number, ms: number): Promise<void> {
  run.clickhouseProxy.setDelay(delayMs);
  try {
    await sleep(ms);
  } finally {
    run.clickhouseProxy.setDelay(0);
  }
}
