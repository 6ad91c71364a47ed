// Scenario 7: the fleet's compactor killed in each step of a round — registry,
// mutation, merge, verification — through the test-only fault points (libs/core/fault-points.ts),
// started again as Kubernetes would, under load. Each request must still end `verified` with no
// old value left in any table, and nothing acknowledged may be lost meanwhile.
import { toNumber } from '../../../libs/clickhouse/client.js';
import { FAULT_POINT_ENV, FAULT_POINTS } from '../../../libs/core/fault-points.js';
import { sendBatch } from '../../../test/support/fleet.js';
import { eventually } from '../../../test/support/poll.js';
import { sleep, startScenario, type FaultRun } from '../harness.js';
import type { FleetScenario } from './fleet-scenario.js';
import { endScenario } from './fleet-scenario.js';

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** `table.column` of every String/Map/Array column holding a needle, in the tenant's rows where the table has a tenant_id. */
async function tablesHolding(run: FaultRun, tenantId: string, needles: readonly string[]): Promise<string[]> {
  const q = async <T>(query: string): Promise<T[]> => (await run.ch.query({ query, format: 'JSONEachRow' })).json<T>();
  const columns = await q<{ table: string; name: string }>(
    `SELECT c.table AS table, c.name AS name FROM system.columns c JOIN system.tables t ON t.database = c.database AND t.name = c.table
     WHERE c.database = currentDatabase() AND t.engine NOT LIKE '%View' AND t.engine NOT IN ('Set', 'Join')
       AND (c.type LIKE '%String%' OR c.type LIKE 'Map%' OR c.type LIKE 'Array%')`,
  );
  const scoped = new Set((await q<{ table: string }>("SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'tenant_id'")).map((r) => r.table));
  if (columns.length < 50) throw new Error(`only ${columns.length} columns found to search`);
  const hits: string[] = [];
  for (const { table, name } of columns) {
    const where = needles.map((n) => `positionCaseInsensitive(toString(\`${name}\`), ${sqlString(n)}) > 0`).join(' OR ');
    const [r] = await q<{ n: unknown }>(`SELECT count() AS n FROM \`${table}\` WHERE ${scoped.has(table) ? `tenant_id = ${sqlString(tenantId)} AND ` : ''}(${where})`);
    if (toNumber(r?.n) > 0) hits.push(`${table}.${name}`);
  }
  return hits;
}

async function stopCompactor(run: FaultRun): Promise<void> {
  const compactor = run.fleet.processes.get('compactor');
  if (!compactor || compactor.exitStatus() !== null) return;
  run.expectedExits.add(compactor.pid);
  compactor.kill('SIGTERM');
  await compactor.exited;
}

export const compactorCrash: FleetScenario = {
  name: 'compactor-crash',
  summary: 'the compactor killed (fault points) in each step of a round: registry, mutation, merge, verification',
  loadFraction: 0.2,
  async run(run, opts, log) {
    const startedAt = Date.now();
    const s = await startScenario(run, { name: 'cc', loadFraction: opts.loadFraction ?? this.loadFraction, ...(opts.rate ? { rate: opts.rate } : {}) });
    const schedule = `at ${s.rate} events/s, for each of ${FAULT_POINTS.join(', ')}: a user identified with old email and first name, the compactor started with ${FAULT_POINT_ENV}=<point>, a PATCH of the user; once the compactor died, started again without it; the request must end verified with no old value in any table`;
    log(`compactor-crash: ${schedule}`);
    const tenant = await run.newTenant('cc-subjects');
    const outcomes: { point: string; died: string | null; status: string; oldValuesIn: string[]; verifiedAfterRestartS: number | null }[] = [];
    const failures: string[] = [];
    for (const point of FAULT_POINTS) {
      const tag = point.replace(/\W/g, '');
      const userId = `subject-${tag}`;
      const old = { email: `old.${tag}.${run.fleet.prefix.slice(1, 7)}@acme-old.io`, firstName: `Oldfirst${tag}` };
      const status = await sendBatch(run.fleet.collectorUrl(), tenant.writeKey, [
        { type: 'identify', messageId: `${tag}-i1`, userId, traits: old },
        { type: 'track', messageId: `${tag}-t1`, userId, event: 'Report Exported' },
      ]);
      if (status !== 200) throw new Error(`identify of ${userId} answered ${status}`);
      const userStored = async () => {
        const [u] = await (await run.ch.query({ query: 'SELECT count() AS n FROM users FINAL WHERE tenant_id = {t:String} AND user_id = {u:String}', query_params: { t: tenant.id, u: userId }, format: 'JSONEachRow' })).json<{ n: unknown }>();
        return toNumber(u?.n) === 1;
      };
      await eventually(userStored, 60_000, `users row of ${userId}`, 500).catch(() => undefined);
      // NOTE: one compactor at a time: the one restarted after the last point would take the request
      await stopCompactor(run);
      const crashing = await run.fleet.start('compactor', 'compactor', { [FAULT_POINT_ENV]: point });
      run.expectedExits.add(crashing.pid);
      const patched = await run.fleet.admin<{ requestId: string }>('PATCH', `/v1/admin/tenants/${tenant.id}/users/${userId}`, { set: { email: `new.${tag}@acme.io`, firstName: 'Newfirst' } });
      if (patched.status !== 202) throw new Error(`PATCH of ${userId} answered ${patched.status}`);
      const died = await Promise.race([crashing.exited, sleep(120_000).then(() => null)]);
      const diedHow = died ? (died.signal ?? `code ${died.code}`) : null;
      crashing.kill('SIGKILL');
      await crashing.exited;
      const restartedAt = Date.now();
      await run.fleet.start('compactor');
      let receipt = '';
      let verifiedAt: number | null = null;
      const receiptFinal = async () => {
        const r = await run.fleet.admin<{ status: string }>('GET', `/v1/admin/requests/${patched.body.requestId}`);
        receipt = r.body.status;
        if (receipt === 'verified') verifiedAt = Date.now();
        return receipt === 'verified' || receipt === 'failed';
      };
      await eventually(receiptFinal, 180_000, `receipt ${patched.body.requestId}`, 1_000).catch(() => undefined);
      const oldValuesIn = await tablesHolding(run, tenant.id, [old.email, old.firstName]);
      const outcome = { point, died: diedHow, status: receipt, oldValuesIn, verifiedAfterRestartS: verifiedAt ? Math.round((verifiedAt - restartedAt) / 100) / 10 : null };
      outcomes.push(outcome);
      log(`  ${point}: compactor ${diedHow === 'SIGKILL' ? 'killed at the point' : `NOT killed at the point (${diedHow ?? 'still running after 120 s'})`}; after the restart the request is ${receipt}${verifiedAt ? ` after ${outcome.verifiedAfterRestartS} s` : ''}; old values in ${oldValuesIn.length ? oldValuesIn.join(', ') : 'no table'}`);
      if (diedHow !== 'SIGKILL') failures.push(`the compactor was not killed at ${point} (${diedHow ?? 'still running'})`);
      if (receipt !== 'verified') failures.push(`the request of the ${point} round ended ${receipt || 'unanswered'}, not verified`);
      if (oldValuesIn.length) failures.push(`old values of the ${point} round left in ${oldValuesIn.join(', ')}`);
    }
    await stopCompactor(run);
    return endScenario(run, s, { name: this.name, schedule, startedAt }, { figures: { rounds: outcomes }, failures });
  },
};
