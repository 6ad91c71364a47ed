// The judgement of each mode × planned/unplanned × valid/invalid/omitted property, table-driven:
// what is kept (and with which properties), what is dropped, which violations — never a value.
import { describe, expect, it } from 'vitest';
import type { RawEvent } from '../events/envelope.js';
import { compilePlan, type CompiledPlan } from './plan-compiler.js';
import { judgeEvent, type ViolationAction } from './plan-judge.js';
import { trackingPlanSchema, type PlanMode, type UnplannedPolicy } from './plan-schema.js';

const SECRET = 'SECRET-7f3a';

function plan(mode: PlanMode, unplanned: UnplannedPolicy = 'allow'): CompiledPlan {
  const r = compilePlan(
    trackingPlanSchema.parse({
      mode,
      unplanned,
      events: {
        'Order Completed': {
          type: 'object',
          additionalProperties: false,
          required: ['total'],
          properties: {
            total: { type: 'number', minimum: 0 },
            currency: { enum: ['EUR', 'USD'] },
            coupon: { type: 'string', pattern: '^[A-Z0-9]{4,12}$' },
            items: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } } } },
          },
        },
      },
      traits: { type: 'object', properties: { plan: { enum: ['free', 'pro'] }, age: { type: 'integer' } } },
    }),
    7,
  );
  if (!r.ok) throw new Error(r.problem.message);
  return r.plan;
}

function event(type: RawEvent['type'], name: string | null, map: Record<string, unknown>): RawEvent {
  const encoded = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, JSON.stringify(v)]));
  return {
    event_id: 'e1', tenant_id: 't', type, name, user_id: 'u1', anonymous_id: null, previous_id: null, session_id: null, account_id: null,
    occurred_at: 1, sent_at: null, received_at: 1, timestamp_clamped: false, ip: null, user_agent: null,
    context: { url: null, path: null, referrer: null, title: null, search: null, locale: null, timezone: null, screen_width: null, screen_height: null, library_name: null, library_version: null },
    element: null,
    properties: type === 'identify' ? {} : encoded,
    traits: type === 'identify' ? encoded : {},
    account_traits: {},
  };
}

const order = (props: Record<string, unknown>) => event('track', 'Order Completed', props);
type Expect = { stored: string[] | null; violations: { action: ViolationAction; rule: string; property: string }[] };

/** what each mode does with an event whose violations are `found` and `omits` keys on omit */
function byMode(all: string[], found: { rule: string; property: string; pinned: string | null }[]): Record<PlanMode, Expect> {
  const omitted = new Set(found.flatMap((f) => (f.pinned ? [f.pinned] : [])));
  return {
    flag: { stored: all, violations: found.map((f) => ({ action: 'flagged', rule: f.rule, property: f.property })) },
    omit: { stored: all.filter((k) => !omitted.has(k)), violations: found.map((f) => ({ action: f.pinned ? 'omitted' : 'flagged', rule: f.rule, property: f.property })) },
    block: { stored: found.length === 0 ? all : null, violations: found.map((f) => ({ action: 'blocked', rule: f.rule, property: f.property })) },
  };
}

const CASES: { name: string; event: RawEvent; expect: Record<PlanMode, Expect> }[] = [
  { name: 'planned, valid', event: order({ total: 10, currency: 'EUR', coupon: 'SPRING24' }), expect: byMode(['total', 'currency', 'coupon'], []) },
  {
    name: 'planned, a value outside its enum',
    event: order({ total: 10, currency: SECRET }),
    expect: byMode(['total', 'currency'], [{ rule: '#/properties/currency/enum', property: '/properties/currency', pinned: 'currency' }]),
  },
  {
    name: 'planned, a pattern and a type violated together (allErrors)',
    event: order({ total: SECRET, coupon: `lower-${SECRET}` }),
    expect: byMode(['total', 'coupon'], [
      { rule: '#/properties/total/type', property: '/properties/total', pinned: 'total' },
      { rule: '#/properties/coupon/pattern', property: '/properties/coupon', pinned: 'coupon' },
    ]),
  },
  {
    name: 'planned, a property the plan does not allow',
    event: order({ total: 1, email: `${SECRET}@example.com` }),
    expect: byMode(['total', 'email'], [{ rule: '#/additionalProperties', property: '/properties/email', pinned: 'email' }]),
  },
  {
    name: 'planned, a nested violation (omit removes the top-level property holding it)',
    event: order({ total: 1, items: [{ sku: 'a' }, { sku: 42 }] }),
    expect: byMode(['total', 'items'], [{ rule: '#/properties/items/items/properties/sku/type', property: '/properties/items/1/sku', pinned: 'items' }]),
  },
  {
    name: 'planned, a required property missing (omit cannot fix it: flagged)',
    event: order({ currency: 'USD' }),
    expect: byMode(['currency'], [{ rule: '#/required', property: '/properties/total', pinned: null }]),
  },
  {
    name: 'identify, traits judged by the traits schema',
    event: event('identify', null, { plan: SECRET, age: 41, email: 'x@example.com' }),
    expect: byMode(['plan', 'age', 'email'], [{ rule: '#/properties/plan/enum', property: '/traits/plan', pinned: 'plan' }]),
  },
  { name: 'page events are not judged', event: event('page', 'Pricing', { anything: SECRET }), expect: byMode(['anything'], []) },
];

describe('judgeEvent', () => {
  for (const mode of ['flag', 'omit', 'block'] as const) {
    it.each(CASES)(`${mode}: $name`, ({ event: e, expect: ex }) => {
      const j = judgeEvent(plan(mode), e);
      const want = ex[mode];
      const map = e.type === 'identify' ? 'traits' : 'properties';
      if (want.stored === null) expect(j.verdict).toBe('drop');
      else {
        expect(j.verdict).toBe('keep');
        if (j.verdict === 'keep') {
          expect(Object.keys(j.event[map])).toEqual(want.stored);
          // kept properties are untouched, and the input is never mutated
          for (const k of want.stored) expect(j.event[map][k]).toBe(e[map][k]);
        }
      }
      expect(j.violations.map(({ action, rule, property }) => ({ action, rule, property }))).toEqual(want.violations);
      expect(JSON.stringify(j.violations)).not.toContain(SECRET);
      expect(JSON.stringify(j.violations)).not.toContain('42');
    });
  }

  describe.each([
    { unplanned: 'allow', verdict: 'keep', violations: [] },
    { unplanned: 'flag', verdict: 'keep', violations: [{ action: 'flagged', rule: 'unplanned', property: '' }] },
    { unplanned: 'block', verdict: 'drop', violations: [{ action: 'blocked', rule: 'unplanned', property: '' }] },
  ] as const)('unplanned: $unplanned', ({ unplanned, verdict, violations }) => {
    it.each(['flag', 'omit', 'block'] as const)('in mode %s, a track event the plan does not name', (mode) => {
      const e = event('track', `Signed Up ${'x'}`, { email: SECRET });
      const j = judgeEvent(plan(mode, unplanned), e);
      expect(j.verdict).toBe(verdict);
      if (j.verdict === 'keep') expect(j.event).toBe(e);
      expect(j.violations.map(({ action, rule, property }) => ({ action, rule, property }))).toEqual(violations);
    });
  });

  it('identify without a traits schema is not judged', () => {
    const r = compilePlan(trackingPlanSchema.parse({ mode: 'block', unplanned: 'block', events: {} }), 1);
    if (!r.ok) throw new Error(r.problem.message);
    const e = event('identify', null, { plan: SECRET });
    expect(judgeEvent(r.plan, e)).toEqual({ verdict: 'keep', event: e, violations: [] });
  });

  it('below the top level, keys the schema does not name are shown as * (they are part of a value)', () => {
    const r = compilePlan(trackingPlanSchema.parse({ mode: 'flag', events: { E: { type: 'object', properties: { contacts: { type: 'object', additionalProperties: false, properties: { kind: { type: 'string' } } }, list: { type: 'array', items: { type: 'object', additionalProperties: { type: 'number' } } } } } } }), 1);
    if (!r.ok) throw new Error(r.problem.message);
    const e = event('track', 'E', { contacts: { kind: 7, [`${SECRET}@example.com`]: true }, list: [{ [SECRET]: 'x' }], [`top-${SECRET}`]: 1 });
    const j = judgeEvent(r.plan, e);
    expect(j.violations.map((v) => v.property).sort()).toEqual(['/properties/contacts/*', '/properties/contacts/kind', '/properties/list/0/*']);
    expect(JSON.stringify(j.violations)).not.toContain(SECRET);
  });

  it('a key such as __proto__ is an ordinary property', () => {
    const e = order({ total: 1 });
    const withProto = { ...e, properties: JSON.parse('{"total":"1","__proto__":"\\"x\\""}') as Record<string, string> };
    const j = judgeEvent(plan('omit'), withProto);
    expect(j.verdict).toBe('keep');
    if (j.verdict === 'keep') expect(Object.keys(j.event.properties)).toEqual(['total']);
    expect(j.violations.map((v) => v.property)).toEqual(['/properties/__proto__']);
  });
});
