// The control: kept/omitted/blocked events and their violation rows; retry while a tenant's plan
// is unknown; one compilation per (tenant, version).
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { CollectedEvent } from '../collection/controls.js';
import type { ViolationRow } from '../clickhouse/tables/violations.js';
import { createLogger } from '../core/logger.js';
import type { RawEvent } from '../events/envelope.js';
import { createMemoryTenantStore, type Tenant } from '../tenants/tenant-store.js';
import { createPlanControl } from './plan-control.js';
import { createPlanMetrics } from './plan-metrics.js';
import { trackingPlanSchema, type StoredPlan } from './plan-schema.js';

const logger = createLogger({ level: 'silent' });
const PLAN = trackingPlanSchema.parse({ mode: 'omit', unplanned: 'block', events: { Bought: { type: 'object', additionalProperties: false, properties: { sku: { type: 'string' } } } } });

function collected(id: string, name: string, properties: Record<string, string>): CollectedEvent {
  const event = { event_id: id, tenant_id: 'acme', type: 'track', name, received_at: 5, properties, traits: {} } as unknown as RawEvent;
  return { event, consent: null };
}

async function tenant(): Promise<Tenant> {
  return (await createMemoryTenantStore().createTenant('acme')).tenant;
}

describe('createPlanControl', () => {
  it('omits, blocks, records rows and counts them', async () => {
    const rows: ViolationRow[] = [];
    const registry = new Registry();
    const metrics = createPlanMetrics(registry);
    let state: StoredPlan | null | undefined = { version: 3, updatedAt: 1, plan: PLAN };
    const control = createPlanControl({ plans: { get: () => state }, violations: { record: (r) => rows.push(...r) }, logger, metrics });
    const t = await tenant();
    const v = await control.apply(t, [collected('e1', 'Bought', { sku: '"a"', email: '"bob@example.com"' }), collected('e2', 'Unplanned', {}), collected('e3', 'Bought', { sku: '"b"' })], 5);
    expect(v.kept.map((c) => [c.event.event_id, c.event.properties])).toEqual([['e1', { sku: '"a"' }], ['e3', { sku: '"b"' }]]);
    expect(v.dropped).toEqual([{ eventId: 'e2', reason: 'plan_blocked' }]);
    expect(v.retry).toEqual([]);
    expect(rows).toEqual([
      { tenant_id: 'acme', received_at: 5, event_id: 'e1', event_type: 'track', event_name: 'Bought', plan_version: 3, action: 'omitted', rule: '#/additionalProperties', keyword: 'additionalProperties', property: '/properties/email', reason: 'must NOT have additional properties' },
      { tenant_id: 'acme', received_at: 5, event_id: 'e2', event_type: 'track', event_name: 'Unplanned', plan_version: 3, action: 'blocked', rule: 'unplanned', keyword: 'unplanned', property: '', reason: 'the event is not in the tracking plan' },
    ]);
    expect(JSON.stringify(rows)).not.toContain('bob@example.com');
    const text = await registry.metrics();
    expect(text).toContain('tracklane_plan_violations_total{action="omitted"} 1');
    expect(text).toContain('tracklane_plan_violations_total{action="blocked"} 1');

    state = null;
    expect((await control.apply(t, [collected('e4', 'Unplanned', {})], 6)).kept).toHaveLength(1);
    state = undefined;
    const unknown = await control.apply(t, [collected('e5', 'Bought', {})], 7);
    expect(unknown.retry).toEqual([{ eventId: 'e5', reason: 'tracking plan not loaded' }]);
    expect(unknown.kept).toEqual([]);
  });

  it('compiles once per version, again when the version changes', async () => {
    let state: StoredPlan = { version: 1, updatedAt: 1, plan: PLAN };
    const control = createPlanControl({ plans: { get: () => state }, violations: { record: () => undefined }, logger });
    const t = await tenant();
    const unplanned = async () => (await control.apply(t, [collected('e', 'Other', {})], 1)).dropped.length;
    expect(await unplanned()).toBe(1);
    // same version, different content: the cached compilation answers (versions are never reused)
    state = { version: 1, updatedAt: 2, plan: { ...PLAN, unplanned: 'allow' } };
    expect(await unplanned()).toBe(1);
    state = { version: 2, updatedAt: 2, plan: { ...PLAN, unplanned: 'allow' } };
    expect(await unplanned()).toBe(0);
  });

  it('a stored event schema that no longer compiles: its events are retried, the others judged (compiled at first use)', async () => {
    // NOTE: a plan the PUT would refuse, as a store could hold it from another version of Tracklane
    const plan = trackingPlanSchema.parse({ mode: 'block', events: { Good: { type: 'object' }, Bad: { type: 'object', properties: { a: { type: 'string', pattern: '(a)\\1' } } } } });
    const control = createPlanControl({ plans: { get: () => ({ version: 1, updatedAt: 1, plan }) }, violations: { record: () => undefined }, logger });
    const v = await control.apply(await tenant(), [collected('g', 'Good', {}), collected('b', 'Bad', { a: '"x"' })], 1);
    expect(v.kept.map((c) => c.event.event_id)).toEqual(['g']);
    expect(v.retry).toEqual([{ eventId: 'b', reason: 'tracking plan does not compile' }]);
  });
});
