// The faults the harness injects (issue 13), on the services scripts/services started: the
// broker killed or frozen, the ClickHouse gateway killed, Redis stopped. Each leaves the
// service as it found it: started again on the same data, answering.
import { readState } from '../services/state.js';
import { startKafka, startService, type ServiceName } from '../services/services.js';
import { sleep } from './harness.js';

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
