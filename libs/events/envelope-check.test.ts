import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { avroType } from '../kafka/avro-schemas.js';
import { cleanFull, cleanMinimal, cleanNullParts, enrichedFull, enrichedMinimal, enrichedNullParts, rawFull, rawMinimal } from '../../test/support/record-fixtures.js';
import { isValidCleanEvent, isValidEnrichedEvent, isValidRawEvent } from './envelope-check.js';
import { cleanEventSchema, enrichedEventSchema, LIMITS, rawEventSchema } from './envelope.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);

/** values of every kind a field may be given, the borderline ones included */
const anything = fc.oneof(
  fc.constantFrom(
    null,
    undefined,
    '',
    'x',
    'x'.repeat(LIMITS.idChars),
    'x'.repeat(LIMITS.idChars + 1),
    0,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 53,
    true,
    false,
    [],
    ['a'],
    [1],
    {},
    { a: 'b' },
    { a: 1 },
    'track',
    'explicit',
    'purchase',
  ),
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc.double(),
);

type Path = readonly (string | number)[];

/** every path to a leaf or an object of `v`, so a mutation can reach any field at any depth */
function pathsOf(v: unknown, prefix: Path = []): Path[] {
  if (v === null || typeof v !== 'object') return [prefix];
  const own = Object.keys(v).flatMap((k) => pathsOf((v as Record<string, unknown>)[k], [...prefix, Array.isArray(v) ? Number(k) : k]));
  return [prefix, ...own];
}

function at(v: unknown, path: Path): unknown {
  let x = v;
  for (const k of path) x = (x as Record<string | number, unknown>)[k];
  return x;
}

function mutated(base: unknown, path: Path, to: unknown, remove: boolean): unknown {
  const copy = structuredClone(base);
  if (path.length === 0) return to;
  let node = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (remove) delete node[last];
  else node[last] = to;
  return copy;
}

const CASES: Array<{ name: string; check: (v: unknown) => boolean; schema: z.ZodType; fixtures: unknown[] }> = [
  { name: 'raw', check: isValidRawEvent, schema: rawEventSchema, fixtures: [rawFull, rawMinimal] },
  { name: 'enriched', check: isValidEnrichedEvent, schema: enrichedEventSchema, fixtures: [enrichedFull, enrichedNullParts, enrichedMinimal] },
  { name: 'clean', check: isValidCleanEvent, schema: cleanEventSchema, fixtures: [cleanFull, cleanNullParts, cleanMinimal] },
];

describe.each(CASES)('the $name event check', ({ name, check, schema, fixtures }) => {
  it('accepts only what the schema accepts, with the same field values', () => {
    let accepted = 0;
    let refused = 0;
    const mutations = fc
      .constantFrom(...fixtures)
      .chain((base) => {
        // NOTE: half the new values are taken from the fixtures (same kinds as the fields), so a good share stays valid
        const to = fc.oneof(anything, fc.constantFrom(...fixtures.flatMap((f) => pathsOf(f).map((p) => at(f, p)))));
        const op = fc.constantFrom('set' as const, 'remove' as const, 'remove then set' as const);
        return fc.tuple(fc.constant(base), fc.constantFrom(...pathsOf(base)), to, op, fc.constantFrom(...pathsOf(base)), to);
      });
    fc.assert(
      fc.property(mutations, ([base, path, to, op, path2, to2]) => {
        // a field set or removed anywhere in the event, or one removed and another (still there) set
        const once = mutated(base, path, to, op !== 'set');
        const second = op === 'remove then set' && pathsOf(once).some((p) => p.join('.') === path2.join('.'));
        const value = second ? mutated(once, path2, to2, false) : once;
        if (!check(value)) {
          refused++;
          return;
        }
        accepted++;
        const parsed = schema.safeParse(value);
        expect(parsed.success).toBe(true);
        expect(parsed.data).toEqual(value);
      }),
      { seed: SEED, numRuns: 5_000 },
    );
    // NOTE: a check that accepted (or refused) nothing would pass the property above vacuously
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(2_000);
  });

  it('accepts each fixture as avsc decodes it (the records the stages read)', () => {
    for (const f of fixtures) {
      const decoded = avroType(name as 'raw' | 'enriched' | 'clean').fromBuffer(avroType(name as 'raw' | 'enriched' | 'clean').toBuffer(f));
      expect(check(decoded)).toBe(true);
      expect(decoded).toEqual(f);
    }
  });

  it.each([
    ['an empty tenant id', { tenant_id: '' }],
    ['an event id over the limit', { event_id: 'x'.repeat(LIMITS.idChars + 1) }],
    ['an unknown type', { type: 'purchase' }],
    ['a fractional received_at', { received_at: 1.5 }],
    ['an unsafe integer occurred_at', { occurred_at: 2 ** 53 }],
    ['a missing user_id', { user_id: undefined }],
    ['a property that is not a string', { properties: { plan: 1 } }],
    ['element classes that are not strings', { element: { tag: 'a', id: null, classes: [1], label: null, href: null } }],
  ])('leaves %s to the schema, which refuses it', (_what, change) => {
    const value = { ...(fixtures[0] as object), ...change };
    expect(check(value)).toBe(false);
    expect(schema.safeParse(value).success).toBe(false);
  });
});

describe('the enriched and clean checks', () => {
  it.each([
    ['a NaN latitude', { geo: { ...enrichedFull.geo, lat: Number.NaN } }],
    ['an infinite longitude', { geo: { ...enrichedFull.geo, lon: Number.POSITIVE_INFINITY } }],
    ['an unknown account source', { inferred_account: { ...enrichedFull.inferred_account, source: 'guessed' } }],
    ['a fractional asn', { ip_org: { asn: 1.5, org: null } }],
  ])('leave %s to the schema, which refuses it', (_what, change) => {
    const enriched = { ...enrichedFull, ...change };
    expect(isValidEnrichedEvent(enriched)).toBe(false);
    expect(enrichedEventSchema.safeParse(enriched).success).toBe(false);
    const clean = { ...cleanFull, ...change };
    expect(isValidCleanEvent(clean)).toBe(false);
    expect(cleanEventSchema.safeParse(clean).success).toBe(false);
  });

  it('a clean event needs its anonymization fields', () => {
    expect(isValidCleanEvent(enrichedFull)).toBe(false);
    expect(isValidCleanEvent({ ...cleanFull, key_version: 0.5 })).toBe(false);
    expect(cleanEventSchema.safeParse({ ...cleanFull, key_version: 0.5 }).success).toBe(false);
  });
});
