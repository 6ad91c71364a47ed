// Scenario 5: the enricher and anonymizer scaled 1 → 3 → 1 every 15 s under load, as
// an autoscaler does: replicas join the groups, then leave them with SIGTERM (a graceful scale
// down). Every rebalance revokes partitions with records in flight.
import { scaleOutAndIn } from '../faults.js';
import { sleep, startScenario } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

export const rebalanceStorm: FleetScenario = {
  name: 'rebalance-storm',
  summary: 'enricher and anonymizer replicas scaled 1 → 3 → 1 every 15 s under load',
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const cycles = opts.cycles ?? (opts.short ? 2 : 4);
    const s = await startScenario(run, { name: 'rb', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `${cycles} cycles at ${s.rate} events/s: 15 s at 1 replica each, 2 more enrichers and anonymizers started, 15 s at 3, the 2 extra of each SIGTERMed`;
    log(`rebalance-storm: ${schedule}`);
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await sleep(15_000);
      const w = await s.fault(`scale ${cycle}`, () => scaleOutAndIn(run, 15_000));
      log(`  cycle ${cycle}: acknowledged ${s.plain.acknowledgedEvents() + s.optedIn.acknowledgedEvents()}, back to 1 replica each, recovery ${w.recoveryMs === null ? 'NONE' : `${(w.recoveryMs / 1000).toFixed(1)} s`}`);
    }
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { cycles } });
  },
};
