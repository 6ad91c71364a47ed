// Validation of one incoming message in Segment's HTTP Tracking API shape (plus Tracklane's
// own auto events). Unknown fields (`_metadata`, `integrations`, `channel` …) are ignored,
// not rejected, so existing Segment SDKs work unchanged.
import { z } from 'zod';
import { EVENT_TYPES, LIMITS } from './envelope.js';

// NOTE: ids are trimmed and numbers stringified in normalize.ts; keeping these schemas free of
// transforms keeps validation cheap (it runs for every event on the collector's hot path).
const idLike = z.union([z.string().max(LIMITS.idChars, `must be at most ${LIMITS.idChars} characters`), z.number()]);

/** ISO-8601 string or epoch milliseconds (parsed, and rejected if invalid, in normalize.ts). */
const timeLike = z.union([z.string(), z.number()]);

/** A plain JSON object, validated without copying (its values are encoded in normalize.ts). */
const looseObject = z.custom<Record<string, unknown>>(
  (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  'must be an object',
);

const elementSchema = z
  .object({
    tag: z.string().nullish(),
    id: z.string().nullish(),
    classes: z.array(z.string()).nullish(),
    label: z.string().nullish(),
    href: z.string().nullish(),
  })
  .partial();

export const segmentMessageSchema = z
  .object({
    type: z.enum(EVENT_TYPES),
    messageId: idLike.optional(),
    userId: idLike.nullish(),
    anonymousId: idLike.nullish(),
    previousId: idLike.nullish(),
    groupId: idLike.nullish(),
    sessionId: idLike.nullish(),
    event: z.string().nullish(),
    name: z.string().nullish(),
    timestamp: timeLike.nullish(),
    originalTimestamp: timeLike.nullish(),
    sentAt: timeLike.nullish(),
    // NOTE: context is read field by field in normalize.ts (strings only; anything else is
    // ignored): a full nested schema cost half of the collector's validation time.
    context: looseObject.nullish(),
    properties: looseObject.nullish(),
    traits: looseObject.nullish(),
    element: elementSchema.nullish(),
  })
  .superRefine((m, ctx) => {
    if (m.type === 'track' && !m.event?.trim()) {
      ctx.addIssue({ code: 'custom', message: 'track requires a non-empty event name', path: ['event'] });
    }
    if (m.type === 'group' && !m.groupId) {
      ctx.addIssue({ code: 'custom', message: 'group requires groupId', path: ['groupId'] });
    }
    if (m.type === 'alias' && (!m.previousId || !m.userId)) {
      ctx.addIssue({ code: 'custom', message: 'alias requires previousId and userId', path: ['previousId'] });
    }
  });

export type SegmentMessage = z.infer<typeof segmentMessageSchema>;

/** One readable line from a zod error: `path: message; path: message`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

// ── the fast path ───────────────────────────────────────────────────────────────────────────

const EVENT_TYPE_SET: ReadonlySet<unknown> = new Set(EVENT_TYPES);
const ELEMENT_STRING_KEYS = ['tag', 'id', 'label', 'href'] as const;
const ID_KEYS = ['userId', 'anonymousId', 'previousId', 'groupId', 'sessionId'] as const;
const TIME_KEYS = ['timestamp', 'originalTimestamp', 'sentAt'] as const;
const OBJECT_KEYS = ['context', 'properties', 'traits'] as const;

const isNullish = (v: unknown): v is null | undefined => v === null || v === undefined;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isId = (v: unknown): boolean => (typeof v === 'string' ? v.length <= LIMITS.idChars : typeof v === 'number' && Number.isFinite(v));
const isTime = (v: unknown): boolean => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/**
 * True when segmentMessageSchema certainly accepts `msg`; the message can then be used as it is
 * (normalize.ts reads the schema's fields only, so the keys zod would strip are never looked at).
 * False means "ask the schema": it gives the errors (or accepts what this check is too strict for).
 * NOTE: the schema copies every message it parses (the collector's largest allocation per event
 * after JSON.parse); this check allocates nothing. segment-message.test.ts holds it to the schema
 * on generated messages: whatever it accepts, the schema accepts with the same field values.
 */
export function isValidSegmentMessage(msg: unknown): msg is SegmentMessage {
  if (!isObject(msg)) return false;
  const type = msg['type'];
  if (!EVENT_TYPE_SET.has(type)) return false;
  const messageId = msg['messageId'];
  if (messageId !== undefined && !isId(messageId)) return false;
  for (const k of ID_KEYS) {
    const v = msg[k];
    if (!isNullish(v) && !isId(v)) return false;
  }
  const event = msg['event'];
  if (!isNullish(event) && typeof event !== 'string') return false;
  const name = msg['name'];
  if (!isNullish(name) && typeof name !== 'string') return false;
  for (const k of TIME_KEYS) {
    const v = msg[k];
    if (!isNullish(v) && !isTime(v)) return false;
  }
  for (const k of OBJECT_KEYS) {
    const v = msg[k];
    if (!isNullish(v) && !isObject(v)) return false;
  }
  const element = msg['element'];
  if (!isNullish(element)) {
    if (!isObject(element)) return false;
    for (const k of ELEMENT_STRING_KEYS) {
      const v = element[k];
      if (!isNullish(v) && typeof v !== 'string') return false;
    }
    const classes = element['classes'];
    if (!isNullish(classes) && !(Array.isArray(classes) && classes.every((c) => typeof c === 'string'))) return false;
  }
  // the schema's superRefine
  if (type === 'track' && !(typeof event === 'string' && event.trim())) return false;
  if (type === 'group' && !msg['groupId']) return false;
  if (type === 'alias' && (!msg['previousId'] || !msg['userId'])) return false;
  return true;
}
