// Judges one event against a compiled tracking plan: which violations it has and what the plan
// does about them (keep as is, keep without the offending properties, or drop). Only `track`
// events (their properties, by event name) and `identify` events (their traits) are judged.
// NOTE: a violation never carries a value the event sent: its rule is the schema path, its
// property path is made of keys, its reason is ajv's message, built from the schema alone.
import type { RawEvent, JsonMap } from '../events/envelope.js';
import type { CompiledPlan, CompiledSchema, ErrorObject } from './plan-compiler.js';
import { pointerSegment } from './plan-schema.js';

export const VIOLATION_ACTIONS = ['flagged', 'omitted', 'blocked'] as const;
export type ViolationAction = (typeof VIOLATION_ACTIONS)[number];

export interface Violation {
  action: ViolationAction;
  /** the schema path of the failed keyword (`#/properties/price/type`), or `unplanned` */
  rule: string;
  keyword: string;
  /** JSON pointer into the event's map: `/properties/price`, `/traits/email`; '' for the event as a whole */
  property: string;
  reason: string;
}

export type Judgement =
  | { verdict: 'keep'; event: RawEvent; violations: readonly Violation[] }
  | { verdict: 'drop'; violations: readonly Violation[] };

/** Most violations recorded for one event: the first ones say enough, the rest cost rows. */
export const MAX_VIOLATIONS_PER_EVENT = 20;
const MAX_SEGMENT_CHARS = 128;
const MAX_PATH_CHARS = 512;
const MAX_REASON_CHARS = 300;

const NONE: readonly Violation[] = Object.freeze([]);

/**
 * The plan's judgement of `event`; events of other types are kept untouched. Throws the
 * PlanCompileError of a lazily compiled plan whose schema for this event does not compile.
 */
export function judgeEvent(plan: CompiledPlan, event: RawEvent): Judgement {
  if (event.type === 'track') {
    const schema = event.name === null ? undefined : plan.event(event.name);
    if (schema === undefined) return unplanned(plan, event);
    return judgeMap(plan, event, schema, 'properties');
  }
  if (event.type === 'identify' && plan.traits !== null) return judgeMap(plan, event, plan.traits, 'traits');
  return { verdict: 'keep', event, violations: NONE };
}

function unplanned(plan: CompiledPlan, event: RawEvent): Judgement {
  if (plan.unplanned === 'allow') return { verdict: 'keep', event, violations: NONE };
  const action: ViolationAction = plan.unplanned === 'block' ? 'blocked' : 'flagged';
  const violation: Violation = { action, rule: 'unplanned', keyword: 'unplanned', property: '', reason: 'the event is not in the tracking plan' };
  return plan.unplanned === 'block' ? { verdict: 'drop', violations: [violation] } : { verdict: 'keep', event, violations: [violation] };
}

function judgeMap(plan: CompiledPlan, event: RawEvent, schema: CompiledSchema, field: 'properties' | 'traits'): Judgement {
  const map = event[field];
  if (schema.validate(decode(map, schema.reads))) return { verdict: 'keep', event, violations: NONE };
  const errors = dedupe(schema.validate.errors ?? []);
  if (plan.mode === 'flag') return { verdict: 'keep', event, violations: errors.map((e) => violationOf(e, field, 'flagged', schema.names)) };
  if (plan.mode === 'block') return { verdict: 'drop', violations: errors.map((e) => violationOf(e, field, 'blocked', schema.names)) };
  // omit: each error pinned to a top-level property removes it; one that is not (a required
  // property missing, a count, a combinator over the whole map) cannot be fixed by removal: flagged
  const omitted = new Set<string>();
  const violations = errors.map((e) => {
    const key = pinnedKey(e);
    if (key === null || !Object.hasOwn(map, key)) return violationOf(e, field, 'flagged', schema.names);
    omitted.add(key);
    return violationOf(e, field, 'omitted', schema.names);
  });
  if (omitted.size === 0) return { verdict: 'keep', event, violations };
  const kept: JsonMap = {};
  for (const [k, v] of Object.entries(map)) if (!omitted.has(k)) kept[k] = v;
  return { verdict: 'keep', event: { ...event, [field]: kept }, violations };
}

/**
 * The map as the schema sees it. Only the values the schema can read are JSON-decoded (the hot
 * path's cost); the others are present as null, which the name-only keywords (additionalProperties
 * false, counts, propertyNames, required) judge the same as any value.
 * NOTE: a prototype-less object, so a key such as `__proto__` is an ordinary property.
 */
function decode(map: JsonMap, reads: ReadonlySet<string> | null): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, raw] of Object.entries(map)) {
    if (reads !== null && !reads.has(k)) {
      out[k] = null;
      continue;
    }
    try {
      out[k] = JSON.parse(raw);
    } catch {
      // NOTE: the collector encoded every value; an undecodable one is judged as a JSON string of itself
      out[k] = raw;
    }
  }
  return out;
}

/** The top-level property an error is about, when removing it can resolve the error. */
function pinnedKey(e: ErrorObject): string | null {
  if (e.instancePath !== '') return unescapePointer(e.instancePath.split('/')[1] ?? '');
  const p = e.params as Record<string, unknown>;
  for (const name of ['additionalProperty', 'propertyName', 'property']) {
    const v = p[name];
    if (typeof v === 'string') return v;
  }
  return null;
}

/**
 * TRICKY: a key inside a property's value is part of that value (`{"emails": {"bob@x.example": 1}}`):
 * below the top level, a path keeps array indices and the names the schema itself mentions, and
 * shows any other key as `*`. Top-level keys are the event's map keys, which are stored as keys
 * in `events` anyway.
 */
function violationOf(e: ErrorObject, field: 'properties' | 'traits', action: ViolationAction, names: ReadonlySet<string>): Violation {
  const p = e.params as Record<string, unknown>;
  // the key the error names beyond its instance path
  const extra = ['missingProperty', 'additionalProperty', 'propertyName'].map((n) => p[n]).find((v): v is string => typeof v === 'string');
  const segments = e.instancePath === '' ? [] : e.instancePath.split('/').slice(1).map(unescapePointer);
  if (extra !== undefined) segments.push(extra);
  const shown = segments.map((s, i) => (i === 0 || /^\d+$/.test(s) || names.has(s) ? s.slice(0, MAX_SEGMENT_CHARS) : '*'));
  const property = `/${field}${shown.map((s) => `/${pointerSegment(s)}`).join('')}`.slice(0, MAX_PATH_CHARS);
  return { action, rule: e.schemaPath.slice(0, MAX_PATH_CHARS), keyword: e.keyword, property, reason: (e.message ?? e.keyword).slice(0, MAX_REASON_CHARS) };
}

/** one error per (schema path, instance, named key), at most MAX_VIOLATIONS_PER_EVENT */
function dedupe(errors: readonly ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  for (const e of errors) {
    const p = e.params as Record<string, unknown>;
    const key = `${e.schemaPath}\u0000${e.instancePath}\u0000${String(p['missingProperty'] ?? p['additionalProperty'] ?? p['propertyName'] ?? '')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
    if (out.length === MAX_VIOLATIONS_PER_EVENT) break;
  }
  return out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}
