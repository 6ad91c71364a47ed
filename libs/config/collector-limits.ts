// The HTTP intake's limits, one schema for both runners (embedded `tracklane start` and the
// fleet collector): request and event sizes, events per batch, the proxies trusted for the
// client address, and how far in the future an event's own time may lie.
import { z } from 'zod';
import { parseList } from './env.js';

/** Events stamped further ahead of their receipt than this get the receipt time (clock skew). */
export const MAX_FUTURE_MS = 60_000;

export const collectorLimitsShape = {
  /** fastify trustProxy: "false", "true", or a comma-separated list of proxy addresses */
  TRUST_PROXY: z.string().default('false'),
  MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).default(500 * 1024),
  MAX_EVENT_BYTES: z.coerce.number().int().min(256).default(32 * 1024),
  MAX_BATCH_EVENTS: z.coerce.number().int().min(1).default(500),
};

type CollectorLimitsEnv = z.infer<z.ZodObject<typeof collectorLimitsShape>>;

/** The cross-field rule: one event never exceeds the request that carries it. */
export function withCollectorLimitsChecked<S extends z.ZodType<CollectorLimitsEnv>>(schema: S): S {
  return schema.refine((c) => c.MAX_EVENT_BYTES <= c.MAX_REQUEST_BYTES, {
    message: 'MAX_EVENT_BYTES must not exceed MAX_REQUEST_BYTES (an event is part of a request)',
    path: ['MAX_EVENT_BYTES'],
  });
}

export interface CollectorLimits {
  maxRequestBytes: number;
  trustProxy: boolean | string[];
  limits: { maxEventBytes: number; maxBatchEvents: number; maxFutureMs: number };
}

export function collectorLimitsFrom(c: CollectorLimitsEnv): CollectorLimits {
  return {
    maxRequestBytes: c.MAX_REQUEST_BYTES,
    trustProxy: parseTrustProxy(c.TRUST_PROXY),
    limits: { maxEventBytes: c.MAX_EVENT_BYTES, maxBatchEvents: c.MAX_BATCH_EVENTS, maxFutureMs: MAX_FUTURE_MS },
  };
}

/** "true" → every proxy, "false" or empty → none, else the listed addresses (fastify trustProxy). */
export function parseTrustProxy(v: string): boolean | string[] {
  const s = v.trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false' || s === '') return false;
  return parseList(s);
}
