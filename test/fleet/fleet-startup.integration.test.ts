// Start-up against a ClickHouse that refuses the login: the services
// that use ClickHouse stay not ready while they retry, log one line naming CLICKHOUSE_PASSWORD
// (never the value), and exit 1 on STARTUP_TIMEOUT_MS — the gateway enforces the login as a
// real server does.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readyzCodesUntilExit, startFleet, type Fleet, type FleetServiceName } from '../support/fleet.js';

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.stopAll();
  fleet = undefined;
});

describe('fleet: ClickHouse refuses the password', () => {
  it('collector, sink and compactor stay not ready, name CLICKHOUSE_PASSWORD, exit 1 on their start timeout', async () => {
    const wrong = `wrong-${randomBytes(9).toString('base64url')}`;
    fleet = await startFleet({ services: [], env: { CLICKHOUSE_PASSWORD: wrong, STARTUP_TIMEOUT_MS: '5000' } });
    const services: FleetServiceName[] = ['collector', 'sink', 'compactor'];
    const procs = await Promise.all(services.map((s) => fleet!.start(s, s, {}, { awaitReady: false })));
    const readiness = await Promise.all(procs.map(readyzCodesUntilExit));
    for (const [i, p] of procs.entries()) {
      const out = p.output();
      expect({ service: p.name, code: (await p.exited).code }).toEqual({ service: p.name, code: 1 });
      expect(readiness[i], p.name).toContain(503);
      expect(readiness[i], p.name).not.toContain(200);
      expect(out, p.name).toContain('ClickHouse refused the credentials: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD');
      expect(out, p.name).toContain('STARTUP_TIMEOUT_MS');
      expect(out, p.name).not.toContain(wrong);
    }
    fleet.processes.clear();
  }, 120_000);
});
