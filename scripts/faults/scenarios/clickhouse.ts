// Scenario 3: the ClickHouse gateway killed and down for a while, then slow — every
// answer to the fleet delayed past its client timeout (an insert the server may have done, that
// the client gave up on) — under load. The sink must retry without losing or doubling rows.
import { restartClickHouse, slowClickHouse } from '../faults.js';
import { CLICKHOUSE_TIMEOUT_MS, sleep, startScenario } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

export const clickhouseOutage: FleetScenario = {
  name: 'clickhouse-outage',
  summary: 'the ClickHouse gateway kill -9ed and down 60 s, then its answers delayed past the client timeout',
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const downS = opts.short ? 20 : 60;
    const slowS = opts.short ? 20 : 60;
    const delayMs = CLICKHOUSE_TIMEOUT_MS + 2_000;
    const s = await startScenario(run, { name: 'ch', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `at ${s.rate} events/s: 10 s up; gateway kill -9, ${downS} s down, restarted on its data; 10 s up; ${slowS} s of answers delayed ${delayMs / 1000} s (client timeout ${CLICKHOUSE_TIMEOUT_MS / 1000} s)`;
    log(`clickhouse-outage: ${schedule}`);
    await sleep(10_000);
    const down = await s.fault('gateway down', () => restartClickHouse(downS * 1000));
    log(`  down ${downS} s: recovery ${down.recoveryMs === null ? 'NONE' : `${(down.recoveryMs / 1000).toFixed(1)} s`}`);
    await sleep(10_000);
    const slow = await s.fault('gateway slow', () => slowClickHouse(run, delayMs, slowS * 1000));
    log(`  slow ${slowS} s: recovery ${slow.recoveryMs === null ? 'NONE' : `${(slow.recoveryMs / 1000).toFixed(1)} s`}`);
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { downS, slowS, delayMs } });
  },
};
