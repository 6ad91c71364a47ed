// Cuts each tenant's time-ordered messages into /v1/batch payloads within Segment's limits,
// and picks the batch before which the second tenant switches anonymization on.
import type { SegmentMessage, TrafficBatch } from './segment-types.js';
import type { Draft } from './session-messages.js';

/** Segment's limits for one /v1/batch request. */
export const MAX_BATCH_MESSAGES = 100;
export const MAX_BATCH_BYTES = 500_000;
/** Room left in a batch for `{"batch":[…],"sentAt":"…"}` around the messages. */
const BATCH_ENVELOPE_BYTES = 64;

function batchBytes(message: SegmentMessage): number {
  return Buffer.byteLength(JSON.stringify(message)) + 1;
}

export function chunkIntoBatches(tenant: string, drafts: Draft[]): { batch: TrafficBatch; firstMs: number }[] {
  const out: { batch: TrafficBatch; firstMs: number }[] = [];
  let current: SegmentMessage[] = [];
  let bytes = BATCH_ENVELOPE_BYTES;
  let firstMs = 0;
  for (const d of drafts) {
    const size = batchBytes(d.message);
    if (current.length >= MAX_BATCH_MESSAGES || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      out.push({ batch: { tenant, messages: current }, firstMs });
      current = [];
      bytes = BATCH_ENVELOPE_BYTES;
    }
    if (current.length === 0) firstMs = d.ms;
    current.push(d.message);
    bytes += size;
  }
  if (current.length > 0) out.push({ batch: { tenant, messages: current }, firstMs });
  return out;
}

/** The batch of `tenant` from which on about half of its events remain to be sent. */
export function chooseSwitchIndex(batches: TrafficBatch[], tenant: string | undefined): number {
  if (tenant === undefined) return batches.length;
  const total = batches.filter((b) => b.tenant === tenant).reduce((s, b) => s + b.messages.length, 0);
  let sent = 0;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i];
    if (b?.tenant !== tenant) continue;
    if (sent > 0 && sent * 2 >= total) return i;
    sent += b.messages.length;
  }
  return batches.length;
}
