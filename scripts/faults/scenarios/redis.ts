// Scenario 4: a tenant's anonymization switched on, and Redis stopped just after —
// for 30 s under load. The enricher and anonymizer cannot read flags: they must pause (fail
// closed) rather than let a clear id through, and resume once Redis answers; the collector keeps
// accepting from its cache.
import { stopRedisFor } from '../faults.js';
import { sleep, startScenario } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

export const redisOutage: FleetScenario = {
  name: 'redis-outage',
  summary: "a tenant's anonymization switched on, then Redis down 30 s, under load",
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const downS = opts.short ? 15 : 30;
    const s = await startScenario(run, { name: 'rd', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}), anonymizeFromStart: false });
    const schedule = `at ${s.rate} events/s: 10 s up; anonymization of the second tenant switched on; 0.5 s later Redis stopped for ${downS} s (append-only file kept), started again`;
    log(`redis-outage: ${schedule}`);
    await sleep(10_000);
    const since = await s.anonymizeNow();
    await sleep(500);
    const w = await s.fault('redis down', () => stopRedisFor(run, downS * 1000));
    log(`  down ${downS} s: recovery ${w.recoveryMs === null ? 'NONE' : `${(w.recoveryMs / 1000).toFixed(1)} s`}`);
    await sleep(5_000);
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { downS, anonymizeSinceAfterSwitchMs: since - w.start } });
  },
};
