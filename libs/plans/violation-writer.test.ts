// The writer: batches by size and age, one insert at a time, a bounded backlog, a failed insert
// logged and counted without stopping later ones.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ViolationRow } from '../clickhouse/tables/violations.js';
import { createLogger } from '../core/logger.js';
import { createPlanMetrics } from './plan-metrics.js';
import { createViolationWriter } from './violation-writer.js';

const logger = createLogger({ level: 'silent' });
const row = (i: number): ViolationRow => ({ tenant_id: 't', received_at: i, event_id: `e${i}`, event_type: 'track', event_name: 'E', plan_version: 1, action: 'flagged', rule: '#/type', keyword: 'type', property: '/properties/a', reason: 'must be string' });

describe('createViolationWriter', () => {
  it('writes a full batch at once and the rest within maxAgeMs; never two inserts at a time', async () => {
    const batches: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const w = createViolationWriter({
      logger,
      maxRows: 3,
      maxAgeMs: 50,
      insert: async (rows) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        batches.push(rows.length);
        inFlight--;
      },
    });
    w.record([row(1), row(2), row(3), row(4)]);
    w.record([row(5)]);
    const started = Date.now();
    while (batches.reduce((a, b) => a + b, 0) < 5 && Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 5));
    expect(batches).toEqual([3, 2]);
    expect(maxInFlight).toBe(1);
    await w.stop();
  });

  it('counts a failed insert and a full backlog; later rows are still written', async () => {
    const registry = new Registry();
    const metrics = createPlanMetrics(registry);
    let fail = true;
    const written: ViolationRow[] = [];
    const w = createViolationWriter({ logger, metrics, maxRows: 10, maxAgeMs: 10_000, maxBuffered: 4, insert: async (rows) => {
      if (fail) throw Object.assign(new Error('Code: 27. row 1: bob@example.com'), { code: '27', type: 'CANNOT_PARSE' });
      written.push(...rows);
    } });
    w.record([row(1), row(2), row(3), row(4), row(5), row(6)]);
    await w.flush();
    fail = false;
    w.record([row(7)]);
    await w.stop();
    expect(written.map((r) => r.event_id)).toEqual(['e7']);
    const text = await registry.metrics();
    expect(text).toContain('tracklane_plan_violation_rows_lost_total{reason="buffer_full"} 2');
    expect(text).toContain('tracklane_plan_violation_rows_lost_total{reason="write_failed"} 4');
  });
});
