// "Offsets ahead": the sink's committed offsets on the clean topic, sampled every 2 s
// while faults happen; at the end every clean-topic record below the highest sample of its
// partition must be stored — a commit that ran ahead of its insert shows up as a record below
// a committed offset that ClickHouse does not have. The same read of the topic finds clear ids
// of opted-in tenants on it.
import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin, Kafka } from 'kafkajs';
import { createRecordCodec } from '../../libs/kafka/record-codec.js';
import { createSchemaRegistry } from '../../libs/kafka/registry-client.js';
import { topicNames } from '../../libs/kafka/topics.js';

export interface OffsetSampler {
  /** per partition, the highest committed offset seen */
  highest(): Map<number, bigint>;
  samples(): number;
  stop(): Promise<void>;
}

export function startOffsetSampler(admin: Admin, groupId: string, topic: string, everyMs = 2_000): OffsetSampler {
  const highest = new Map<number, bigint>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
        for (const p of offsets?.partitions ?? []) {
          const o = BigInt(p.offset);
          if (o >= 0n && o > (highest.get(p.partition) ?? -1n)) highest.set(p.partition, o);
        }
        samples++;
      } catch {
        // the broker is away (a fault): the next sample counts
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    highest: () => new Map(highest),
    samples: () => samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

export interface OptedIn {
  tenantId: string;
  /** anonymizeSince: events received from then on must carry no clear id */
  since: number;
  /** a clear user id the load sends */
  isClear(userId: string): boolean;
}

export interface TopicCheck {
  /** events read below the sampled offsets (a record that cannot be read counts as one) */
  checked: number;
  /** event ids below a committed offset and not stored (at most 1000 listed) */
  ahead: string[];
  aheadCount: number;
  /** records of opted-in tenants received after anonymizeSince carrying a clear id */
  clearOnTopic: string[];
}

/** Reads the clean topic up to `upTo` per partition and checks each record against ClickHouse. */
export async function checkCleanTopic(opts: {
  kafka: Kafka;
  registryUrl: string;
  prefix: string;
  upTo: Map<number, bigint>;
  ch: ClickHouseClient;
  optedIn: readonly OptedIn[];
  timeoutMs?: number;
}): Promise<TopicCheck> {
  const topics = topicNames(opts.prefix);
  const codec = createRecordCodec({ registry: createSchemaRegistry({ host: opts.registryUrl }), topics });
  await codec.init();
  const byTenant = new Map<string, string[]>();
  const clearOnTopic: string[] = [];
  let checked = 0;
  const pending = new Map([...opts.upTo].filter(([, o]) => o > 0n));
  if (pending.size > 0) {
    const consumer = opts.kafka.consumer({ groupId: `${opts.prefix}faults-check-${Date.now()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: topics.clean, fromBeginning: true });
      let finish: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (finish = resolve));
      await consumer.run({
        eachBatch: async ({ batch }) => {
          const limit = opts.upTo.get(batch.partition) ?? 0n;
          for (const m of batch.messages) {
            if (BigInt(m.offset) >= limit) break;
            const d = m.value ? await codec.decodeCleanRecord(m.value) : undefined;
            if (!d?.ok) {
              checked++;
              continue;
            }
            for (const item of d.value) {
              checked++;
              if (!item.ok) continue;
              const e = item.value;
              const ids = byTenant.get(e.tenant_id) ?? [];
              ids.push(e.event_id);
              byTenant.set(e.tenant_id, ids);
              const o = opts.optedIn.find((t) => t.tenantId === e.tenant_id);
              if (o && e.received_at >= o.since && (!e.identity_anonymized || (e.user_id !== null && o.isClear(e.user_id)))) clearOnTopic.push(e.event_id);
            }
          }
          if (BigInt(batch.lastOffset()) + 1n >= limit) pending.delete(batch.partition);
          if (pending.size === 0) finish();
        },
      });
      const timeoutMs = opts.timeoutMs ?? 600_000;
      const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs))]);
      if (timedOut) throw new Error(`the clean topic could not be read up to the sampled offsets within ${timeoutMs / 1000} s (partitions left: ${[...pending.keys()].join(', ')})`);
    } finally {
      await consumer.disconnect();
    }
  }
  const ahead: string[] = [];
  for (const [tenantId, ids] of byTenant) {
    const stored = new Set(
      (
        await (
          await opts.ch.query({ query: 'SELECT DISTINCT event_id FROM events WHERE tenant_id = {t:String}', query_params: { t: tenantId }, format: 'JSONEachRow' })
        ).json<{ event_id: string }>()
      ).map((r) => r.event_id),
    );
    for (const id of ids) if (!stored.has(id)) ahead.push(id);
  }
  return { checked, ahead: ahead.slice(0, 1000), aheadCount: ahead.length, clearOnTopic: clearOnTopic.slice(0, 1000) };
}
