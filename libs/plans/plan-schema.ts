// What a tenant's tracking plan is (issue 16 item 6): its mode, the JSON Schema of each planned
// `track` event's properties, the schema of `identify` traits, and what happens to track events
// the plan does not name. Bounded, because every byte of it is compiled and run on the hot path.
import { z } from 'zod';
import { LIMITS } from '../events/envelope.js';

export const PLAN_MODES = ['flag', 'omit', 'block'] as const;
export type PlanMode = (typeof PLAN_MODES)[number];

export const UNPLANNED_POLICIES = ['allow', 'flag', 'block'] as const;
export type UnplannedPolicy = (typeof UNPLANNED_POLICIES)[number];

/** Bounds of one plan: the PUT is refused (400) beyond them. */
export const PLAN_LIMITS = Object.freeze({
  /** the plan as JSON: compiled once per version, held by every collector */
  maxBytes: 256 * 1024,
  maxEvents: 500,
  /** nesting of objects and arrays inside one schema (a deeper one is a mistake or an attack) */
  maxDepth: 12,
  /** property names a schema mentions are map keys: the envelope's key bound */
  maxPropertyNameChars: LIMITS.mapKeyChars,
  /** a planned event name is a track event name */
  maxEventNameChars: LIMITS.nameChars,
  maxPatternChars: 1_000,
});

/** A JSON Schema document: an object (ajv checks the rest when the plan is compiled). */
const jsonSchemaObject = z.record(z.string(), z.unknown());

export const trackingPlanSchema = z
  .object({
    mode: z.enum(PLAN_MODES),
    unplanned: z.enum(UNPLANNED_POLICIES).default('allow'),
    events: z
      .record(
        z.string().min(1, 'event names must not be empty').max(PLAN_LIMITS.maxEventNameChars, `event names must be at most ${PLAN_LIMITS.maxEventNameChars} characters`),
        jsonSchemaObject,
      )
      .default({})
      .refine((e) => Object.keys(e).length <= PLAN_LIMITS.maxEvents, `at most ${PLAN_LIMITS.maxEvents} planned events`),
    traits: jsonSchemaObject.optional(),
  })
  .strict();
export type TrackingPlan = z.infer<typeof trackingPlanSchema>;

/** A plan as a store holds it: versions only grow per tenant, so a cached compilation is never stale. */
export const storedPlanSchema = z.object({
  version: z.number().int().min(1),
  updatedAt: z.number().int(),
  plan: trackingPlanSchema,
});
export type StoredPlan = z.infer<typeof storedPlanSchema>;

/** A problem of a plan, with where it is (a JSON pointer into the PUT body). */
export interface PlanProblem {
  path: string;
  message: string;
}

/**
 * The bounds zod cannot express: size, depth, property-name and pattern lengths. Walks the
 * document once; the first problem wins (one clear 400 beats a list of consequences).
 */
export function planBoundsProblem(body: unknown): PlanProblem | null {
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(body) ?? '');
  } catch {
    return { path: '', message: 'the plan cannot be encoded (nested too deeply)' };
  }
  if (bytes > PLAN_LIMITS.maxBytes) return { path: '', message: `the plan is ${bytes} bytes; the limit is ${PLAN_LIMITS.maxBytes}` };
  if (body === null || typeof body !== 'object') return null;
  const events = (body as Record<string, unknown>)['events'];
  if (events !== null && typeof events === 'object') {
    for (const [name, schema] of Object.entries(events)) {
      const p = schemaProblem(schema, `/events/${pointerSegment(name)}`, 0);
      if (p) return p;
    }
  }
  const traits = (body as Record<string, unknown>)['traits'];
  return traits === undefined ? null : schemaProblem(traits, '/traits', 0);
}

/** keywords whose object value maps property names to schemas or lists */
const NAME_KEYED = new Set(['properties', 'dependencies', 'dependentRequired', 'dependentSchemas']);

function schemaProblem(node: unknown, path: string, depth: number): PlanProblem | null {
  if (node === null || typeof node !== 'object') return null;
  if (depth > PLAN_LIMITS.maxDepth) return { path, message: `the schema is nested deeper than ${PLAN_LIMITS.maxDepth} levels` };
  if (Array.isArray(node)) {
    for (const [i, item] of node.entries()) {
      const p = schemaProblem(item, `${path}/${i}`, depth + 1);
      if (p) return p;
    }
    return null;
  }
  for (const [key, value] of Object.entries(node)) {
    const here = `${path}/${pointerSegment(key)}`;
    if ((key === 'pattern' || key === 'patternProperties') && typeof value === 'string' && value.length > PLAN_LIMITS.maxPatternChars) {
      return { path: here, message: `patterns must be at most ${PLAN_LIMITS.maxPatternChars} characters` };
    }
    if (key === 'patternProperties' && value !== null && typeof value === 'object') {
      for (const p of Object.keys(value)) {
        if (p.length > PLAN_LIMITS.maxPatternChars) return { path: `${here}/${pointerSegment(p)}`, message: `patterns must be at most ${PLAN_LIMITS.maxPatternChars} characters` };
      }
    }
    if (NAME_KEYED.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const name of Object.keys(value)) {
        if (name.length > PLAN_LIMITS.maxPropertyNameChars) {
          return { path: `${here}/${pointerSegment(name.slice(0, 40))}…`, message: `property names must be at most ${PLAN_LIMITS.maxPropertyNameChars} characters` };
        }
      }
    }
    if (key === 'required' && Array.isArray(value)) {
      for (const [i, name] of value.entries()) {
        if (typeof name === 'string' && name.length > PLAN_LIMITS.maxPropertyNameChars) {
          return { path: `${here}/${i}`, message: `property names must be at most ${PLAN_LIMITS.maxPropertyNameChars} characters` };
        }
      }
    }
    // NOTE: `enum`/`const`/`default`/`examples` hold data, not schemas: their depth counts too (they are compiled into the validator)
    const p = schemaProblem(value, here, depth + 1);
    if (p) return p;
  }
  return null;
}

/** A JSON pointer segment (RFC 6901): `~` and `/` escaped. */
export function pointerSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
