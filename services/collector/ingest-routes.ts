// Segment HTTP Tracking API routes: /v1/batch and the single-call routes. Each message is
// validated on its own: invalid ones are reported by index while valid siblings are
// accepted; the answer is sent only after the pipeline handed the events on durably.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EventType, RawEvent } from '../../libs/events/envelope.js';
import { eventBytesOver, normalizeMessage, type RequestFacts } from '../../libs/events/normalize.js';
import { describeIssues, isValidSegmentMessage, segmentMessageSchema, type SegmentMessage } from '../../libs/events/segment-message.js';
import { applyControls, NO_CONTROLS, type CollectedEvent, type CollectionControls, type ConsentPreferences } from '../../libs/collection/controls.js';
import type { IngestPipeline } from '../../libs/pipeline/ingest.js';
import type { Tenant } from '../../libs/tenants/tenant-store.js';
import { registerIngestCors } from './cors.js';

export interface IngestLimits {
  maxEventBytes: number;
  maxBatchEvents: number;
  maxFutureMs: number;
}

export interface IngestDeps {
  tenantByWriteKey: (writeKey: string) => Tenant | undefined;
  pipeline: IngestPipeline;
  limits: IngestLimits;
  /** rate limits, consent, tracking preferences, bots, tracking plans (libs/collection); default none */
  collection?: CollectionControls;
  now?: () => number;
}

export interface EventError {
  index: number;
  messageId: string | null;
  error: string;
}

const SINGLE_ROUTES: Record<string, EventType> = {
  '/v1/track': 'track',
  '/v1/identify': 'identify',
  '/v1/page': 'page',
  '/v1/screen': 'screen',
  '/v1/group': 'group',
  '/v1/alias': 'alias',
};

export function registerIngestRoutes(app: FastifyInstance, deps: IngestDeps): void {
  const now = deps.now ?? Date.now;
  const collection = deps.collection ?? NO_CONTROLS;
  registerIngestCors(app, ['/v1/batch', ...Object.keys(SINGLE_ROUTES)]);

  app.post('/v1/batch', async (req, reply) => {
    const body = asObject(req.body);
    if (!body || !Array.isArray(body['batch'])) {
      return reply.code(400).send({ success: false, error: 'bad_request', message: 'body must be an object with a "batch" array' });
    }
    const batch = body['batch'] as unknown[];
    if (batch.length > deps.limits.maxBatchEvents) {
      return reply.code(400).send({
        success: false,
        error: 'batch_too_large',
        message: `batch has ${batch.length} events; the limit is ${deps.limits.maxBatchEvents}`,
      });
    }
    return ingest(req, reply, batch, body);
  });

  for (const [path, type] of Object.entries(SINGLE_ROUTES)) {
    app.post(path, async (req, reply) => {
      const body = asObject(req.body);
      if (!body) return reply.code(400).send({ success: false, error: 'bad_request', message: 'body must be a JSON object' });
      return ingest(req, reply, [{ ...body, type }], body);
    });
  }

  async function ingest(req: FastifyRequest, reply: FastifyReply, messages: unknown[], body: Record<string, unknown>) {
    const writeKey = writeKeyFrom(req, body);
    const tenant = writeKey ? deps.tenantByWriteKey(writeKey) : undefined;
    if (!tenant) {
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="tracklane"')
        .send({ success: false, error: 'unauthorized', message: writeKey ? 'unknown write key' : 'missing write key (HTTP Basic username)' });
    }
    const receivedAt = now();
    if (collection.admission) {
      const admission = await collection.admission.admit(tenant, messages.length, receivedAt);
      if (!admission.admitted) {
        return reply
          .code(429)
          .header('retry-after', String(admission.retryAfterSeconds))
          .send({ success: false, error: 'rate_limited', message: `the tenant's event rate limit is exceeded; retry in ${admission.retryAfterSeconds} s` });
      }
    }
    const facts: RequestFacts = {
      tenantId: tenant.tenantId,
      receivedAt,
      requestIp: req.ip ?? null,
      requestUserAgent: req.headers['user-agent'] ?? null,
      batchSentAt: timeField(body['sentAt']),
    };
    const { events: collected, errors } = collectAll(messages, facts, deps.limits, { allowMissingIds: collection.derivesAnonymousIds === true });
    if (collected.length === 0) {
      return reply.code(400).send({ success: false, error: 'invalid_events', message: 'no valid event in the request', errors });
    }
    if (!deps.pipeline.ready()) {
      return reply.code(503).header('retry-after', '1').send({ success: false, error: 'unavailable', message: 'pipeline is not ready' });
    }
    const verdicts = await applyControls(collection.controls, tenant, collected, receivedAt);
    // NOTE: an event still without any id (no control derived one) is never stored as such
    const unidentified = verdicts.kept.filter((c) => c.event.user_id === null && c.event.anonymous_id === null).length;
    const events = verdicts.kept.map((c) => c.event).filter((e) => e.user_id !== null || e.anonymous_id !== null);
    const outcome = verdicts.retry.length === 0 && unidentified === 0 && events.length > 0 ? await deps.pipeline.ingest(events) : { accepted: 0, dropped: [], deadLettered: [], retry: [] };
    const retry = verdicts.retry.length + unidentified + outcome.retry.length;
    const dropped = verdicts.dropped.length + outcome.dropped.length;
    if (retry > 0) {
      // NOTE: siblings already stored are harmless on a retry: event ids are deduplicated.
      return reply.code(503).header('retry-after', '1').send({
        success: false,
        error: 'retry',
        message: `${retry} event(s) could not be processed now; retry the request`,
      });
    }
    // NOTE: counted once the request is answered 2xx: a retried request's drops are counted when it lands
    for (const d of verdicts.dropped) collection.onDrop?.(tenant.tenantId, d.reason);
    // NOTE: counts only: a reason (e.g. that a user is suppressed) is not for the sender's eyes
    return reply.code(200).send({
      success: true,
      accepted: outcome.accepted,
      ...(dropped > 0 ? { dropped } : {}),
      ...(outcome.deadLettered.length > 0 ? { deadLettered: outcome.deadLettered.length } : {}),
      ...(errors.length > 0 ? { rejected: errors.length, errors } : {}),
    });
  }
}

/** normalize and validate each message: the valid ones as envelopes, the others' errors by index */
export function normalizeAll(
  messages: readonly unknown[],
  facts: RequestFacts,
  limits: IngestLimits,
): { events: RawEvent[]; errors: EventError[] } {
  const { events, errors } = collectAll(messages, facts, limits);
  return { events: events.map((c) => c.event), errors };
}

/** normalizeAll, with what the collection controls read from each message beyond its envelope */
export function collectAll(
  messages: readonly unknown[],
  facts: RequestFacts,
  limits: IngestLimits,
  { allowMissingIds = false }: { allowMissingIds?: boolean } = {},
): { events: CollectedEvent[]; errors: EventError[] } {
  const events: CollectedEvent[] = [];
  const errors: EventError[] = [];
  const opts = { maxFutureMs: limits.maxFutureMs, mintId: randomUUID, allowMissingIds };
  messages.forEach((msg, index) => {
    const messageId = messageIdOf(msg);
    try {
      normalizeOne(msg, index, messageId);
    } catch {
      // NOTE: e.g. JSON nested too deep to encode (RangeError). The message is not echoed: it may hold PII.
      errors.push({ index, messageId, error: 'event could not be processed (nested too deeply or malformed)' });
    }
  });
  return { events, errors };

  function normalizeOne(msg: unknown, index: number, messageId: string | null): void {
    // NOTE: the schema only for messages the allocation-free check does not accept (it words the errors)
    let message: SegmentMessage;
    if (isValidSegmentMessage(msg)) {
      message = msg;
    } else {
      const parsed = segmentMessageSchema.safeParse(msg);
      if (!parsed.success) {
        errors.push({ index, messageId, error: describeIssues(parsed.error) });
        return;
      }
      message = parsed.data;
    }
    const r = normalizeMessage(message, facts, opts);
    if (!r.ok) {
      errors.push({ index, messageId, error: r.error });
      return;
    }
    const bytes = eventBytesOver(r.event, limits.maxEventBytes);
    if (bytes !== null) {
      errors.push({ index, messageId, error: `event is ${bytes} bytes; the limit is ${limits.maxEventBytes}` });
      return;
    }
    events.push({ event: r.event, consent: consentOf(message.context) });
  }
}

/** `context.consent.categoryPreferences` with its boolean entries; null when absent or not an object. */
export function consentOf(ctx: Record<string, unknown> | null | undefined): ConsentPreferences | null {
  const prefs = asObject(asObject(ctx?.['consent'])?.['categoryPreferences']);
  if (!prefs) return null;
  const out: Record<string, boolean> = Object.create(null);
  for (const [k, v] of Object.entries(prefs)) if (typeof v === 'boolean') out[k] = v;
  return out;
}

function writeKeyFrom(req: FastifyRequest, body: Record<string, unknown>): string | null {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const user = decoded.split(':')[0]?.trim();
    if (user) return user;
  }
  const fromBody = body['writeKey'];
  return typeof fromBody === 'string' && fromBody.trim() ? fromBody.trim() : null;
}

function messageIdOf(msg: unknown): string | null {
  const id = asObject(msg)?.['messageId'];
  return typeof id === 'string' ? id.slice(0, 128) : null;
}

function timeField(v: unknown): string | number | null {
  return typeof v === 'string' || typeof v === 'number' ? v : null;
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
