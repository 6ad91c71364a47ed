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
