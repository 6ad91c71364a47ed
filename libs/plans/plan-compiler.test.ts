// Compilation of plans: patterns run on re2js (linear time) or the plan is refused naming where;
// strict mode's refusals name where too; what the hot path decodes.
import { describe, expect, it } from 'vitest';
import { compilePlan } from './plan-compiler.js';
import { PLAN_LIMITS, planBoundsProblem, trackingPlanSchema } from './plan-schema.js';

const withEvent = (schema: Record<string, unknown>, name = 'Signed Up') => trackingPlanSchema.parse({ mode: 'flag', events: { [name]: schema } });
const problemOf = (schema: Record<string, unknown>, name?: string) => {
  const r = compilePlan(withEvent(schema, name), 1);
  return r.ok ? null : r.problem;
};
const str = (extra: Record<string, unknown>) => ({ type: 'object', properties: { a: { type: 'string', ...extra } } });

describe('patterns', () => {
  it.each([
    { what: 'a backreference', schema: str({ pattern: '(a)\\1' }), path: '/events/Signed Up/properties/a/pattern' },
    { what: 'a named backreference', schema: str({ pattern: '(?<x>a)\\k<x>' }), path: '/events/Signed Up/properties/a/pattern' },
    { what: 'a lookahead', schema: str({ pattern: '^(?=.*\\d).+$' }), path: '/events/Signed Up/properties/a/pattern' },
    { what: 'a lookbehind', schema: str({ pattern: '(?<!x)y' }), path: '/events/Signed Up/properties/a/pattern' },
    { what: 'a patternProperties key', schema: { type: 'object', patternProperties: { '^(?!tmp_)': { type: 'string' } } }, path: '/events/Signed Up/patternProperties/^(?!tmp_)' },
    { what: 'a pattern under items/anyOf', schema: { type: 'object', properties: { l: { type: 'array', items: { anyOf: [{ type: 'string', pattern: '(x)\\1' }] } } } }, path: '/events/Signed Up/properties/l/items/anyOf/0/pattern' },
  ])('$what is refused with where it is', ({ schema, path }) => {
    const p = problemOf(schema);
    expect(p?.path).toBe(path);
    expect(p?.message).toMatch(/linear-time engine/);
  });

  it('an event name with "/" is escaped in the path', () => {
    expect(problemOf(str({ pattern: '(a)\\1' }), 'a/b')?.path).toBe('/events/a~1b/properties/a/pattern');
  });

  it('a "pattern" inside enum or const is data, not a pattern', () => {
    expect(problemOf({ type: 'object', properties: { a: { type: 'object', const: { pattern: '(a)\\1' } } } })).toBeNull();
  });

  it('(a+)+$ on a long input finishes in linear time', () => {
    const r = compilePlan(withEvent(str({ pattern: '(a+)+$' })), 1);
    if (!r.ok) throw new Error(r.problem.message);
    const validate = r.plan.event('Signed Up')?.validate;
    const evil = `${'a'.repeat(50_000)}!`;
    const started = performance.now();
    // NOTE: the match is found ("a…a" before "!" satisfies (a+)+ then $ fails; RE2 answers no match overall)
    expect(validate?.({ a: evil })).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a local $ref to definitions works', () => {
    const r = compilePlan(withEvent({ type: 'object', definitions: { code: { type: 'string', pattern: '^[A-Z]+$' } }, properties: { a: { $ref: '#/definitions/code' } } }), 1);
    if (!r.ok) throw new Error(r.problem.message);
    expect(r.plan.event('Signed Up')?.validate({ a: 'ABC' })).toBe(true);
    expect(r.plan.event('Signed Up')?.validate({ a: 'abc' })).toBe(false);
  });

  it('JS escapes (\\uXXXX) and classes work as in JSON Schema', () => {
    const r = compilePlan(withEvent(str({ pattern: '^caf\\u00e9 \\d{2}$' })), 1);
    if (!r.ok) throw new Error(r.problem.message);
    const validate = r.plan.event('Signed Up')?.validate;
    expect(validate?.({ a: 'café 42' })).toBe(true);
    expect(validate?.({ a: 'cafe 42' })).toBe(false);
  });
});

describe('strict mode refusals name where', () => {
  it.each([
    { what: 'an unknown keyword', schema: str({ maxLenght: 3 }), path: '/events/Signed Up', message: /unknown keyword: "maxLenght"/ },
    { what: 'a keyword without its type', schema: { type: 'object', properties: { a: { minLength: 3 } } }, path: '/events/Signed Up/properties/a', message: /missing type "string"/ },
    { what: 'an invalid type', schema: { type: 'object', properties: { a: { type: 'strin' } } }, path: '/events/Signed Up/properties/a/type', message: /not a valid JSON Schema/ },
    { what: 'an unknown format', schema: str({ format: 'email' }), path: '/events/Signed Up/properties/a', message: /unknown format "email"/ },
    { what: 'a tuple without its bounds', schema: { type: 'object', properties: { a: { type: 'array', items: [{ type: 'string' }] } } }, path: '/events/Signed Up/properties/a', message: /"items" is 1-tuple/ },
    { what: 'an $id (schemas compile one by one)', schema: { type: 'object', properties: { a: { $id: 'https://x.example/a', type: 'string' } } }, path: '/events/Signed Up/properties/a/$id', message: /\$id is not supported/ },
    { what: 'an unresolvable $ref', schema: { type: 'object', properties: { a: { $ref: '#/nope' } } }, path: '/events/Signed Up', message: /can't resolve reference/ },
  ])('$what', ({ schema, path, message }) => {
    const p = problemOf(schema);
    expect(p?.path).toBe(path);
    expect(p?.message).toMatch(message);
  });

  it('traits problems are under /traits', () => {
    const r = compilePlan(trackingPlanSchema.parse({ mode: 'flag', traits: { type: 'object', properties: { a: { type: 'string', pattern: '(a)\\1' } } } }), 1);
    expect(r.ok ? null : r.problem.path).toBe('/traits/properties/a/pattern');
  });
});

describe('what the hot path decodes', () => {
  const readsOf = (schema: Record<string, unknown>) => {
    const r = compilePlan(withEvent(schema), 1);
    if (!r.ok) throw new Error(r.problem.message);
    const reads = r.plan.event('Signed Up')?.reads;
    return reads === null || reads === undefined ? reads : [...reads].sort();
  };
  it.each([
    { what: 'named properties only', schema: { type: 'object', additionalProperties: false, required: ['b'], properties: { b: { type: 'string' }, a: { type: 'number' } } }, reads: ['a', 'b'] },
    { what: 'patternProperties: every value', schema: { type: 'object', patternProperties: { '^x': { type: 'string' } } }, reads: null },
    { what: 'additionalProperties as a schema: every value', schema: { type: 'object', additionalProperties: { type: 'string' } }, reads: null },
    { what: 'a combinator at the top: every value', schema: { type: 'object', anyOf: [{ required: ['a'] }, { required: ['b'] }], properties: { a: {}, b: {} } }, reads: null },
  ])('$what', ({ schema, reads }) => {
    expect(readsOf(schema)).toEqual(reads);
  });
});

describe('plan bounds', () => {
  it('refuses unknown fields, an unknown mode, too many events', () => {
    expect(trackingPlanSchema.safeParse({ mode: 'flag', extra: 1 }).success).toBe(false);
    expect(trackingPlanSchema.safeParse({ mode: 'warn' }).success).toBe(false);
    expect(trackingPlanSchema.safeParse({ mode: 'flag', unplanned: 'omit' }).success).toBe(false);
    const many = Object.fromEntries(Array.from({ length: PLAN_LIMITS.maxEvents + 1 }, (_, i) => [`e${i}`, { type: 'object' }]));
    expect(trackingPlanSchema.safeParse({ mode: 'flag', events: many }).success).toBe(false);
    expect(trackingPlanSchema.parse({ mode: 'block' })).toEqual({ mode: 'block', unplanned: 'allow', events: {} });
  });

  it.each([
    { what: 'size', body: { mode: 'flag', events: { e: { type: 'object', description: 'x'.repeat(PLAN_LIMITS.maxBytes) } } }, path: '', message: /bytes; the limit is/ },
    { what: 'depth', body: { mode: 'flag', events: { e: nest(PLAN_LIMITS.maxDepth + 2) } }, path: /^\/events\/e(\/properties\/p)+/, message: /nested deeper/ },
    { what: 'a long property name', body: { mode: 'flag', events: { e: { type: 'object', properties: { ['k'.repeat(129)]: {} } } } }, path: /^\/events\/e\/properties\/k+…$/, message: /at most 128 characters/ },
    { what: 'a long required name', body: { mode: 'flag', traits: { type: 'object', required: ['k'.repeat(129)] } }, path: '/traits/required/0', message: /at most 128 characters/ },
    { what: 'a long pattern', body: { mode: 'flag', traits: { type: 'object', properties: { a: { type: 'string', pattern: 'a'.repeat(1_001) } } } }, path: '/traits/properties/a/pattern', message: /patterns must be at most/ },
  ])('$what', ({ body, path, message }) => {
    const p = planBoundsProblem(body);
    if (typeof path === 'string') expect(p?.path).toBe(path);
    else expect(p?.path).toMatch(path);
    expect(p?.message).toMatch(message);
  });

  it('a plan within bounds has no problem', () => {
    expect(planBoundsProblem({ mode: 'flag', events: { e: nest(4) } })).toBeNull();
  });
});

function nest(levels: number): Record<string, unknown> {
  let s: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < levels; i++) s = { type: 'object', properties: { p: s } };
  return s;
}
