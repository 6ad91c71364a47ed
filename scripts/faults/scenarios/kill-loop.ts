// Scenario 6: a random worker kill -9ed every 10 s, and started again at once as
// Kubernetes would. Only what the harness killed is started again: a process that exited by
// itself is a finding.
import type { FleetServiceName } from '../../../test/support/fleet.js';
import { sleep, startScenario } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

const VICTIMS: FleetServiceName[] = ['collector', 'enricher', 'anonymizer', 'sink'];

export const killLoop: FleetScenario = {
  name: 'kill-loop',
  summary: 'a random worker kill -9ed every 10 s for 5 minutes, started again at once',
  loadFraction: 0.3,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const kills = opts.cycles ?? (opts.short ? 5 : 30);
    const s = await startScenario(run, { name: 'kl', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `${kills} kills at ${s.rate} events/s, one every 10 s: a random one of ${VICTIMS.join(', ')} kill -9ed, started again at once (waits until ready)`;
    log(`kill-loop: ${schedule}`);
    const killed: string[] = [];
    // NOTE: the whole loop is one fault window; recovery counts from the last kill
    const w = await s.fault('kill loop', async () => {
      let next = Date.now();
      for (let i = 1; i <= kills; i++) {
        next += 10_000;
        await sleep(Math.max(0, next - Date.now()));
        const name = VICTIMS[Math.floor(Math.random() * VICTIMS.length)] as FleetServiceName;
        const victim = run.fleet.processes.get(name);
        if (!victim || victim.exitStatus() !== null) continue;
        killed.push(name);
        const restartStart = Date.now();
        run.expectedExits.add(victim.pid);
        victim.kill('SIGKILL');
        await victim.exited;
        await run.fleet.start(name);
        log(`  kill ${i}: ${name} kill -9ed, ready again after ${((Date.now() - restartStart) / 1000).toFixed(1)} s; acknowledged ${s.plain.acknowledgedEvents() + s.optedIn.acknowledgedEvents()}`);
      }
    });
    const perService = Object.fromEntries(VICTIMS.map((v) => [v, killed.filter((k) => k === v).length]));
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { kills: killed.length, killsPerService: perService, recoveryAfterLastKillS: w.recoveryMs === null ? null : Math.round(w.recoveryMs / 100) / 10 } });
  },
};
