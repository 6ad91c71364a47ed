// A tracking plan compiled once per version: one ajv validator per planned event and one for
// traits, strict (a typo in a schema is a 400, not a rule that never fires), allErrors (so `omit`
// knows every offending property), patterns on re2js. A problem names where it is in the PUT body.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { compileLinearPattern, linearRegExp } from './linear-regexp.js';
import { pointerSegment, type PlanMode, type PlanProblem, type TrackingPlan, type UnplannedPolicy } from './plan-schema.js';

export interface CompiledSchema {
  validate: ValidateFunction;
  /** top-level property names whose values the schema can read; null: it may read any */
  reads: ReadonlySet<string> | null;
  /** every property name the schema itself mentions (properties, required), at any depth */
  names: ReadonlySet<string>;
}

export interface CompiledPlan {
  version: number;
  mode: PlanMode;
  unplanned: UnplannedPolicy;
  /**
   * The schema of a planned event; undefined when the plan does not name it. Lazily compiled
   * plans compile an event's schema at its first use and throw a PlanCompileError when it does
   * not compile (a stored plan that no longer does: the caller answers retry).
   */
  event(name: string): CompiledSchema | undefined;
  traits: CompiledSchema | null;
}

export class PlanCompileError extends Error {
  override readonly name = 'PlanCompileError';
  constructor(readonly problem: PlanProblem) {
    super(`${problem.path}: ${problem.message}`);
  }
}

export type CompileOutcome = { ok: true; plan: CompiledPlan } | { ok: false; problem: PlanProblem };

/**
 * Compiles `plan`. `lazy`: every event's schema at its first use (the collector: an ajv
 * compilation costs 1–3 ms a schema, and a 500-event plan compiled at once would stall the event
 * loop for a second on each replica); otherwise all of them now (the PUT, which must refuse a
 * plan with any problem). Traits are compiled at once either way.
 */
export function compilePlan(plan: TrackingPlan, version: number, { lazy = false }: { lazy?: boolean } = {}): CompileOutcome {
  // NOTE: one ajv per plan version: `$id`s of one plan never meet another's, and the whole
  // instance (its compiled code) is dropped with the version
  // NOTE: strictRequired off: it refuses `anyOf: [{ required: ['a'] }, …]` beside `properties`
  // (it looks for `a` in the same subschema only), the usual way to say "one of these is needed"
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true, code: { regExp: linearRegExp }, messages: true, useDefaults: false, coerceTypes: false });
  const schemas = new Map(Object.entries(plan.events));
  const compiled = new Map<string, CompiledSchema>();
  const compileEvent = (name: string, schema: Record<string, unknown>) => {
    const r = compileOne(ajv, schema, `/events/${pointerSegment(name)}`);
    if (r.ok) compiled.set(name, r.schema);
    return r;
  };
  if (!lazy) {
    for (const [name, schema] of schemas) {
      const r = compileEvent(name, schema);
      if (!r.ok) return r;
    }
  }
  let traits: CompiledSchema | null = null;
  if (plan.traits !== undefined) {
    const r = compileOne(ajv, plan.traits, '/traits');
    if (!r.ok) return r;
    traits = r.schema;
  }
  const event = (name: string): CompiledSchema | undefined => {
    const hit = compiled.get(name);
    if (hit !== undefined) return hit;
    const schema = schemas.get(name);
    if (schema === undefined) return undefined;
    const r = compileEvent(name, schema);
    if (!r.ok) throw new PlanCompileError(r.problem);
    return r.schema;
  };
  return { ok: true, plan: { version, mode: plan.mode, unplanned: plan.unplanned, event, traits } };
}

/**
 * The first problem of `plan`, compiling every schema as the PUT must, but yielding to the event
 * loop between schemas: a 500-event plan takes about a second to compile, and the collector
 * that answers the PUT goes on taking events meanwhile.
 */
export async function planProblem(plan: TrackingPlan): Promise<PlanProblem | null> {
  const r = compilePlan(plan, 0, { lazy: true });
  if (!r.ok) return r.problem;
  for (const name of Object.keys(plan.events)) {
    await new Promise((resolve) => setImmediate(resolve));
    try {
      r.plan.event(name);
    } catch (err) {
      if (err instanceof PlanCompileError) return err.problem;
      throw err;
    }
  }
  return null;
}

function compileOne(ajv: Ajv, schema: Record<string, unknown>, at: string): { ok: true; schema: CompiledSchema } | { ok: false; problem: PlanProblem } {
  const pattern = patternProblem(schema, at);
  if (pattern) return { ok: false, problem: pattern };
  if (!ajv.validateSchema(schema)) {
    const e = ajv.errors?.[0];
    return { ok: false, problem: { path: `${at}${e?.instancePath ?? ''}`, message: `not a valid JSON Schema: ${e?.message ?? 'invalid'}` } };
  }
  try {
    return { ok: true, schema: { validate: ajv.compile(schema), reads: readsOf(schema), names: namesOf(schema, new Set()) } };
  } catch (err) {
    // e.g. strict mode: unknown keyword, unknown format, missing type for a keyword, unresolved $ref
    const message = err instanceof Error ? err.message : 'schema could not be compiled';
    // NOTE: ajv's strict-mode messages say where as `at "#/properties/a"`: made a pointer into the body
    const where = /at (?:path )?"#([^"]*)"/.exec(message)?.[1] ?? '';
    return { ok: false, problem: { path: `${at}${where}`, message } };
  }
}

/** keywords whose value is a map of name → subschema */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas', 'dependencies']);
/** keywords whose value is a subschema or a list of them */
const SCHEMA_VALUES = new Set(['items', 'additionalItems', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'allOf', 'anyOf', 'oneOf', 'prefixItems']);

/** The first `pattern` / `patternProperties` key RE2 cannot run (or `$id`), with its JSON pointer. */
export function patternProblem(node: unknown, at: string): PlanProblem | null {
  if (node === null || typeof node !== 'object') return null;
  if (Array.isArray(node)) {
    for (const [i, s] of node.entries()) {
      const p = patternProblem(s, `${at}/${i}`);
      if (p) return p;
    }
    return null;
  }
  for (const [key, value] of Object.entries(node)) {
    const here = `${at}/${pointerSegment(key)}`;
    // NOTE: no `$id`: schemas compile one by one at first use, so one may never $ref another's id
    // (it would resolve at the PUT and not in a collector that met the other event first)
    if (key === '$id') return { path: here, message: '$id is not supported: use "definitions" and local "$ref"s ("#/definitions/…") within one schema' };
    if (key === 'pattern' && typeof value === 'string') {
      const r = compileLinearPattern(value);
      if (!r.ok) return { path: here, message: r.message };
    } else if (SCHEMA_MAPS.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, sub] of Object.entries(value)) {
        const subAt = `${here}/${pointerSegment(name)}`;
        if (key === 'patternProperties') {
          const r = compileLinearPattern(name);
          if (!r.ok) return { path: subAt, message: r.message };
        }
        const p = patternProblem(sub, subAt);
        if (p) return p;
      }
    } else if (SCHEMA_VALUES.has(key)) {
      const p = patternProblem(value, here);
      if (p) return p;
    }
    // NOTE: enum, const, default, examples hold data: a "pattern" inside them is not a pattern
  }
  return null;
}

/**
 * Top-level keywords that look at a property only by the name the schema gives it (or at names
 * and counts alone): with only these, the values of other properties need not be decoded.
 */
const NAME_ONLY_KEYWORDS = new Set(['type', 'properties', 'required', 'minProperties', 'maxProperties', 'propertyNames', 'dependentRequired', 'title', 'description', '$comment', '$schema', '$id', 'definitions', '$defs', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly']);

function readsOf(schema: Record<string, unknown>): ReadonlySet<string> | null {
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'additionalProperties' && typeof v === 'boolean') continue;
    if (!NAME_ONLY_KEYWORDS.has(k)) return null;
  }
  const props = schema['properties'];
  return new Set(props !== null && typeof props === 'object' ? Object.keys(props) : []);
}

function namesOf(node: unknown, into: Set<string>): Set<string> {
  if (node === null || typeof node !== 'object') return into;
  if (Array.isArray(node)) {
    for (const s of node) namesOf(s, into);
    return into;
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [name, sub] of Object.entries(value)) {
        into.add(name);
        namesOf(sub, into);
      }
    } else if (key === 'required' && Array.isArray(value)) {
      for (const n of value) if (typeof n === 'string') into.add(n);
    } else if (SCHEMA_MAPS.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const sub of Object.values(value)) namesOf(sub, into);
    } else if (SCHEMA_VALUES.has(key)) {
      namesOf(value, into);
    }
  }
  return into;
}

export type { ErrorObject };
