import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, LIMITS } from './envelope.js';
import { isValidSegmentMessage, segmentMessageSchema } from './segment-message.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);

const value = fc.oneof(
  fc.constantFrom(null, '', ' ', '  x ', 0, 1, -1.5, true, false, [], ['a'], [1], {}, { a: 1 }, 'x'.repeat(LIMITS.idChars), 'x'.repeat(LIMITS.idChars + 1)),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.constantFrom(...EVENT_TYPES, 'Track', 'unknown'),
);
const element = fc.oneof(
  value,
  fc.record(
    { tag: value, id: value, classes: fc.oneof(value, fc.array(fc.oneof(fc.string({ maxLength: 4 }), value), { maxLength: 3 })), label: value, href: value, extra: value },
    { requiredKeys: [] },
  ),
);
/** mostly values of the field's own kind, sometimes anything */
const mostly = (own: fc.Arbitrary<unknown>) => fc.oneof({ weight: 6, arbitrary: own }, { weight: 1, arbitrary: value });
const id = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.constant(null), fc.constant('x'.repeat(LIMITS.idChars)));
const obj = fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 3 }), value, { maxKeys: 3 }));
const str = fc.oneof(fc.string({ maxLength: 6 }), fc.constant(null), fc.constant(' '));
const time = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.constant(null), fc.constant('2026-12-04T01:00:00Z'));
const OWN: Record<string, fc.Arbitrary<unknown>> = {
  messageId: fc.oneof(fc.string({ maxLength: 6 }), fc.integer()),
  userId: id,
  anonymousId: id,
  previousId: id,
  groupId: id,
  sessionId: id,
  event: str,
  name: str,
  timestamp: time,
  originalTimestamp: time,
  sentAt: time,
  context: obj,
  properties: obj,
  traits: obj,
};
const FIELDS = ['messageId', 'userId', 'anonymousId', 'previousId', 'groupId', 'sessionId', 'event', 'name', 'timestamp', 'originalTimestamp', 'sentAt', 'context', 'properties', 'traits'] as const;
const message = fc.record(
  {
    type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...EVENT_TYPES) }, { weight: 1, arbitrary: value }),
    ...Object.fromEntries(FIELDS.map((f) => [f, mostly(OWN[f] ?? value)])),
    element: mostly(fc.oneof(fc.constant(null), fc.record({ tag: str, id: str, classes: fc.oneof(fc.constant(null), fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 })), label: str, href: str, extra: value }, { requiredKeys: [] }))),
    extraElement: element,
    integrations: value,
  },
  { requiredKeys: ['type'] },
);

describe('isValidSegmentMessage', () => {
  it('accepts only what the schema accepts, with the same field values', () => {
    let accepted = 0;
    fc.assert(
      fc.property(message, (msg) => {
        if (!isValidSegmentMessage(msg)) return;
        accepted++;
        const parsed = segmentMessageSchema.safeParse(msg);
        expect(parsed.success).toBe(true);
        if (!parsed.success) return;
        const m = msg as Record<string, unknown>;
        for (const f of ['type', ...FIELDS] as const) expect((parsed.data as Record<string, unknown>)[f]).toEqual(m[f]);
        const el = m['element'];
        if (el !== null && el !== undefined) {
          const known = Object.fromEntries(Object.entries(el as Record<string, unknown>).filter(([k]) => ['tag', 'id', 'classes', 'label', 'href'].includes(k)));
          expect(parsed.data.element).toEqual(known);
        } else {
          expect(parsed.data.element).toEqual(el);
        }
      }),
      { seed: SEED, numRuns: 20_000 },
    );
    // NOTE: a check that accepted nothing would pass the property above vacuously
    expect(accepted).toBeGreaterThan(1_000);
  });

  it.each([
    ['track', { type: 'track', event: 'Signed Up', userId: 'u1', messageId: 'node-next-1', timestamp: '2026-12-04T01:00:00Z', properties: { plan: 'pro' }, context: { ip: '1.2.3.4' } }],
    ['page', { type: 'page', anonymousId: 42, name: null, properties: {}, sentAt: 1781524800000 }],
    ['identify', { type: 'identify', userId: 'u1', traits: { email: 'a@b.co' }, integrations: { All: true }, _metadata: {} }],
    ['group', { type: 'group', userId: 'u1', groupId: 'acme', traits: { name: 'Acme' } }],
    ['alias', { type: 'alias', userId: 'u2', previousId: 'u1' }],
    ['click', { type: 'click', anonymousId: 'a', element: { tag: 'button', classes: ['btn'], label: 'Go', href: null } }],
  ])('accepts a valid %s message as the schema does', (_name, msg) => {
    expect(segmentMessageSchema.safeParse(msg).success).toBe(true);
    expect(isValidSegmentMessage(msg)).toBe(true);
  });

  it.each([
    ['a track without an event name', { type: 'track', userId: 'u1', event: '  ' }],
    ['a group without groupId', { type: 'group', userId: 'u1', groupId: '' }],
    ['an alias without previousId', { type: 'alias', userId: 'u1' }],
    ['an unknown type', { type: 'purchase', userId: 'u1' }],
    ['a null messageId', { type: 'page', userId: 'u1', messageId: null }],
    ['an id over the limit', { type: 'page', userId: 'x'.repeat(LIMITS.idChars + 1) }],
    ['properties that are an array', { type: 'page', userId: 'u1', properties: [] }],
    ['element classes that are not strings', { type: 'click', userId: 'u1', element: { classes: [1] } }],
    ['a boolean timestamp', { type: 'page', userId: 'u1', timestamp: true }],
  ])('leaves %s to the schema, which rejects it', (_name, msg) => {
    expect(isValidSegmentMessage(msg)).toBe(false);
    expect(segmentMessageSchema.safeParse(msg).success).toBe(false);
  });
});
