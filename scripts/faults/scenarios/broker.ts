// Scenarios 1 and 2: the broker killed (kill -9, restarted on its log dir) or frozen
// (SIGSTOP, then SIGCONT), on a schedule under load. No process is restarted by the harness:
// delivery must resume by itself after each fault, and a worker that exits is a finding.
import { hangBroker, restartBroker } from '../faults.js';
import { sleep, startScenario } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

export const brokerRestart: FleetScenario = {
  name: 'broker-restart',
  summary: 'kill -9 of the broker and a restart on its log dir, ≥ 20 cycles under load',
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const cycles = opts.cycles ?? (opts.short ? 2 : 20);
    const upS = opts.short ? 8 : 12;
    const downS = 4;
    const s = await startScenario(run, { name: 'br', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `${cycles} cycles at ${s.rate} events/s: ${upS} s up, kill -9, ${downS} s down, restart; then wait until the lag is below 1 s of load`;
    log(`broker-restart: ${schedule}`);
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await sleep(upS * 1000);
      const w = await s.fault(`restart ${cycle}`, () => restartBroker(downS * 1000));
      log(`  cycle ${cycle}: acknowledged ${s.plain.acknowledgedEvents() + s.optedIn.acknowledgedEvents()}, recovery ${w.recoveryMs === null ? 'NONE' : `${(w.recoveryMs / 1000).toFixed(1)} s`}${s.unexpectedExits().length ? `, exited: ${s.unexpectedExits().join(', ')}` : ''}`);
      if (w.recoveryMs === null) break;
    }
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { cycles } });
  },
};

export const brokerHang: FleetScenario = {
  name: 'broker-hang',
  summary: 'SIGSTOP of the broker for 20 s, then SIGCONT, repeated under load',
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const cycles = opts.cycles ?? (opts.short ? 2 : 5);
    const hangS = 20;
    const upS = 15;
    const s = await startScenario(run, { name: 'bh', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `${cycles} cycles at ${s.rate} events/s: ${upS} s up, SIGSTOP, ${hangS} s frozen, SIGCONT; then wait until the lag is below 1 s of load`;
    log(`broker-hang: ${schedule}`);
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await sleep(upS * 1000);
      const w = await s.fault(`hang ${cycle}`, () => hangBroker(hangS * 1000));
      log(`  cycle ${cycle}: acknowledged ${s.plain.acknowledgedEvents() + s.optedIn.acknowledgedEvents()}, recovery ${w.recoveryMs === null ? 'NONE' : `${(w.recoveryMs / 1000).toFixed(1)} s`}${s.unexpectedExits().length ? `, exited: ${s.unexpectedExits().join(', ')}` : ''}`);
      if (w.recoveryMs === null) break;
    }
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { cycles } });
  },
};
