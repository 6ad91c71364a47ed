// Experiment: does a KafkaJS 2.2.4 idempotent producer (idempotent, maxInFlightRequests 1,
// acks -1) lose its session for good across a kill -9 + restart of the broker, and does a stage
// loop (consume → produce → commit after the send) stall a partition because of it?
//
//   npx tsx scripts/faults/experiments/producer-session.ts [--cycles 20] [--mode plain|swallow]
//
// Runs on its OWN single-node KRaft broker (127.0.0.1:19092, controller 19093, data in
// /tmp/ps-kafka/data, kept across the restarts of one run), started from .services/kafka/libs.
// Load, all concurrently, each from its own KafkaJS client built like the fleet's (createKafka):
//   raw      raw kafkajs idempotent producer, keyed messages (what the project sends)
//   connect  producer from connectProducer (libs/kafka/outputs.ts; not idempotent: this
//            experiment shows the idempotent one losing acknowledged batches), keyed
//   keyless  raw idempotent producer, messages WITHOUT key (a control: not how the project sends)
//   feed     connectProducer feeding topic A of the stage loop
//   stage    createStageWorker (libs/kafka/stage-worker.ts) on A → createTopicOutput on a RAW
//            idempotent producer → topic B; commits only after the send
//   stage-c  the same on A (own group) through a connectProducer producer → topic B' (as the fleet)
// Every acknowledged id is recorded and read back at the end (missing, duplicates).
// --mode swallow puts a proxy in front of the broker that, for --swallow-ms before each kill,
// drops the broker's answers: the requests in flight are written but never acknowledged, i.e. the
// kill lands exactly in the window a plain kill -9 only hits by chance.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners, type Message, type Producer, type ProducerRecord } from 'kafkajs';
import { createLogger } from '../../../libs/core/logger.js';
import { createKafka } from '../../../libs/kafka/kafka-client.js';
import { connectProducer, createTopicOutput } from '../../../libs/kafka/outputs.js';
import { createStageWorker, type StageWorker } from '../../../libs/kafka/stage-worker.js';
import { passStage, pipeline } from '../../../libs/pipeline/pipeline.js';
import { createPipelineMetrics } from '../../../libs/pipeline/metrics.js';
import { eventually } from '../../../test/support/poll.js';
import { startBlackholeProxy, type BlackholeProxy } from './blackhole-proxy.js';
import { PrivateKafka } from './private-kafka.js';

/** the broker answers after which an idempotent producer's session is out of step with it */
const LOST_SESSION = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING']);
function lostProducerSession(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (LOST_SESSION.has(String((e as { type?: unknown }).type))) return true;
  }
  return false;
}

const { values: args } = parseArgs({
  options: {
    cycles: { type: 'string', default: '20' },
    up: { type: 'string', default: '10' }, // s of load between restarts
    down: { type: 'string', default: '4' }, // s without broker
    concurrency: { type: 'string', default: '4' }, // concurrent send loops per producer
    pace: { type: 'string', default: '10' }, // ms between sends of one loop
    'max-batch': { type: 'string', default: '5' },
    settle: { type: 'string', default: '90' }, // max s to drain at the end
    mode: { type: 'string', default: 'plain' },
    'swallow-ms': { type: 'string', default: '150' },
    home: { type: 'string', default: '/tmp/ps-kafka' },
    port: { type: 'string', default: '19092' },
    'controller-port': { type: 'string', default: '19093' },
    'proxy-port': { type: 'string', default: '19192' },
    'no-keyless': { type: 'boolean', default: false },
    dry: { type: 'boolean', default: false },
  },
});
const cfg = {
  cycles: Number(args.cycles),
  upMs: Number(args.up) * 1000,
  downMs: Number(args.down) * 1000,
  concurrency: Number(args.concurrency),
  paceMs: Number(args.pace),
  maxBatch: Number(args['max-batch']),
  settleMs: Number(args.settle) * 1000,
  mode: args.mode === 'swallow' ? ('swallow' as const) : ('plain' as const),
  swallowMs: Number(args['swallow-ms']),
  home: String(args.home),
  port: Number(args.port),
  controllerPort: Number(args['controller-port']),
  proxyPort: Number(args['proxy-port']),
  keyless: !args['no-keyless'],
};
const forbidden = [9092, 9093, 9094, 8081, 8123, 6379];
for (const p of [cfg.port, cfg.controllerPort, cfg.proxyPort]) if (forbidden.includes(p)) throw new Error(`port ${p} belongs to the shared services`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const t0 = Date.now();
const ts = (t: number) => `${((t - t0) / 1000).toFixed(1)}s`;
const say = (s: string) => process.stdout.write(`[${ts(Date.now())}] ${s}\n`);

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.then((v) => ({ v })).catch((e: unknown) => ({ e })), new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms)))]);
  clearTimeout(timer);
  if (r === 'timeout') {
    say(`  (${what}: no answer after ${ms} ms, left behind)`);
    return undefined;
  }
  if ('e' in r) return undefined;
  return r.v;
}

/** error class chain plus protocol type, e.g. `KafkaJSProtocolError:OUT_OF_ORDER_SEQUENCE_NUMBER`; messages with digits masked */
function errorLabel(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let d = 0; e !== null && typeof e === 'object' && d < 8; d++) {
    const o = e as { name?: unknown; type?: unknown; cause?: unknown };
    const part = `${String(o.name ?? 'Error')}${o.type ? `:${String(o.type)}` : ''}`;
    if (parts.at(-1) !== part) parts.push(part);
    e = o.cause;
  }
  const msg = err instanceof Error ? err.message.replace(/\d+/g, 'N').slice(0, 90) : String(err);
  return `${parts.join(' < ')} "${msg}"`;
}

// ---------------------------------------------------------------- tracking
interface Outcome {
  t: number; // start of the send
  end: number;
  ok: boolean;
  n: number;
  label?: string;
  lost: boolean;
}

class Tracker {
  readonly outcomes: Outcome[] = [];
  readonly acked: number[] = [];
  ackedCount = 0;
  attemptedIds = 0;
  abandonedIds = 0;
  inFlight = new Map<number, number>(); // token -> start
  private token = 0;
  constructor(
    readonly name: string,
    readonly topic: string,
    readonly prefix: string,
  ) {}
  begin(): number {
    const k = ++this.token;
    this.inFlight.set(k, Date.now());
    return k;
  }
  ok(k: number, ids: readonly number[]): void {
    const start = this.inFlight.get(k) ?? Date.now();
    this.inFlight.delete(k);
    this.outcomes.push({ t: start, end: Date.now(), ok: true, n: ids.length, lost: false });
    for (const id of ids) {
      if (this.acked[id] !== 1) {
        this.acked[id] = 1;
        this.ackedCount++;
      }
    }
  }
  fail(k: number, n: number, err: unknown): void {
    const start = this.inFlight.get(k) ?? Date.now();
    this.inFlight.delete(k);
    this.outcomes.push({ t: start, end: Date.now(), ok: false, n, label: errorLabel(err), lost: lostProducerSession(err) });
  }
  oldestInFlightMs(now = Date.now()): number {
    let m = 0;
    for (const s of this.inFlight.values()) m = Math.max(m, now - s);
    return m;
  }
}

// counts kafkajs' own log lines (internal retries, "Failed to send messages: …") per client
const logCounts = new Map<string, number>();
function makeLogger(file: string) {
  const out = createWriteStream(file, { flags: 'a' });
  return createLogger({
    level: 'warn',
    name: 'ps',
    destination: {
      write(line: string) {
        out.write(line);
        try {
          const o = JSON.parse(line) as { client?: string; msg?: string };
          const key = `${o.client ?? '?'} | ${String(o.msg ?? '').replace(/\d+/g, 'N').slice(0, 100)}`;
          logCounts.set(key, (logCounts.get(key) ?? 0) + 1);
        } catch {
          /* not json */
        }
      },
    },
  });
}

// ---------------------------------------------------------------- load loops
const idOf = (value: string): { prefix: string; n: number } | undefined => {
  const i = value.lastIndexOf(':');
  if (i < 0) return undefined;
  const n = Number(value.slice(i + 1));
  return Number.isInteger(n) ? { prefix: value.slice(0, i), n } : undefined;
};

interface Load {
  tracker: Tracker;
  /** stop making new batches; loops end once their pending batch is acknowledged */
  drain(): void;
  /** loops end after their current send */
  stop(): void;
  pendingBatches(): number;
  done: Promise<void>;
}

function startLoad(opts: { tracker: Tracker; send: (r: ProducerRecord) => Promise<unknown>; keyed: boolean; concurrency: number; paceMs: number; maxBatch: number }): Load {
  let next = 0;
  let draining = false;
  let stopped = false;
  let pending = 0;
  const loop = async () => {
    let batch: number[] | null = null;
    while (!stopped) {
      if (batch === null) {
        if (draining) break;
        const size = 1 + Math.floor(Math.random() * opts.maxBatch);
        batch = Array.from({ length: size }, () => next++);
        opts.tracker.attemptedIds += size;
        pending++;
      }
      const ids: number[] = batch;
      const messages: Message[] = ids.map((n) => {
        const v = `${opts.tracker.prefix}:${n}`;
        return opts.keyed ? { key: v, value: v } : { value: v };
      });
      const k = opts.tracker.begin();
      try {
        await opts.send({ topic: opts.tracker.topic, acks: -1, messages });
        opts.tracker.ok(k, ids);
        batch = null;
        pending--;
        if (opts.paceMs > 0) await sleep(opts.paceMs);
      } catch (err) {
        opts.tracker.fail(k, ids.length, err);
        // like a redelivery / a client's retry after a 503: the same records again
        await sleep(200);
      }
    }
    if (batch !== null) {
      opts.tracker.abandonedIds += batch.length;
      pending--;
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency }, loop)).then(() => undefined);
  return {
    tracker: opts.tracker,
    drain: () => (draining = true),
    stop: () => (stopped = true),
    pendingBatches: () => pending,
    done,
  };
}

// ---------------------------------------------------------------- stage stall monitor
interface Gap {
  partition: number;
  from: number; // last progress before the gap
  to: number | null; // progress again (null: still stalled at the end)
  lagAtEnd: number;
}

function startStallMonitor(kafka: Kafka, groupId: string, topic: string) {
  const admin = kafka.admin();
  let connected = false;
  const state = new Map<number, { committed: bigint; progressAt: number; lag: bigint; stalled: boolean }>();
  const gaps: Gap[] = [];
  const samples: { t: number; partition: number; high: string; committed: string }[] = [];
  let stopped = false;
  const errors = new Map<string, number>();
  const tick = async () => {
    if (!connected) {
      await admin.connect();
      connected = true;
    }
    // NOTE: one request at a time (two at once on a fresh admin saw "No brokers in the broker pool")
    const highs = await admin.fetchTopicOffsets(topic);
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const now = Date.now();
    const committedOf = new Map<number, bigint>();
    for (const p of offsets[0]?.partitions ?? []) committedOf.set(p.partition, BigInt(p.offset === '-1' ? '0' : p.offset));
    for (const h of highs) {
      const committed = committedOf.get(h.partition) ?? 0n;
      const high = BigInt(h.high);
      const lag = high - committed;
      samples.push({ t: now, partition: h.partition, high: h.high, committed: committed.toString() });
      const s = state.get(h.partition);
      if (!s) {
        state.set(h.partition, { committed, progressAt: now, lag, stalled: false });
        continue;
      }
      const progressed = committed > s.committed || lag === 0n;
      if (progressed) {
        if (now - s.progressAt > 2_500) gaps.push({ partition: h.partition, from: s.progressAt, to: now, lagAtEnd: Number(s.lag) });
        s.progressAt = now;
        s.stalled = false;
      } else {
        s.stalled = true;
      }
      s.committed = committed;
      s.lag = lag;
    }
  };
  const run = (async () => {
    while (!stopped) {
      try {
        await tick();
      } catch (err) {
        const l = errorLabel(err);
        errors.set(l, (errors.get(l) ?? 0) + 1);
        connected = false;
        await admin.disconnect().catch(() => undefined);
      }
      await sleep(1_000);
    }
  })();
  return {
    gaps,
    samples,
    errors,
    lagNow: () => [...state.entries()].map(([p, s]) => ({ partition: p, lag: Number(s.lag), stalledForMs: s.stalled ? Date.now() - s.progressAt : 0 })),
    caughtUp: () => state.size > 0 && [...state.values()].every((s) => s.lag === 0n),
    async stop() {
      stopped = true;
      await run;
      const now = Date.now();
      for (const [p, s] of state) if (s.stalled && now - s.progressAt > 2_500) gaps.push({ partition: p, from: s.progressAt, to: null, lagAtEnd: Number(s.lag) });
      await admin.disconnect().catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------- read back
async function readBack(brokers: string, topics: string[]): Promise<Map<string, Map<string, number[]>>> {
  const kafka = new Kafka({ clientId: 'ps-readback', brokers: [brokers], logLevel: logLevel.NOTHING, retry: { retries: 8 } });
  const admin = kafka.admin();
  await admin.connect();
  const remaining = new Map<string, bigint>(); // `${topic}/${p}` -> high
  for (const topic of topics) {
    for (const o of await admin.fetchTopicOffsets(topic)) if (BigInt(o.high) > BigInt(o.low)) remaining.set(`${topic}/${o.partition}`, BigInt(o.high));
  }
  await admin.disconnect();
  const counts = new Map<string, Map<string, number[]>>(); // topic -> prefix -> counts[n]
  for (const t of topics) counts.set(t, new Map());
  if (remaining.size === 0) return counts;
  const consumer = kafka.consumer({ groupId: `ps-readback-${Date.now()}`, maxWaitTimeInMs: 200, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const byPrefix = counts.get(batch.topic)!;
      for (const m of batch.messages) {
        const id = m.value ? idOf(m.value.toString()) : undefined;
        if (id) {
          let arr = byPrefix.get(id.prefix);
          if (!arr) byPrefix.set(id.prefix, (arr = []));
          arr[id.n] = (arr[id.n] ?? 0) + 1;
        }
        const key = `${batch.topic}/${batch.partition}`;
        const high = remaining.get(key);
        if (high !== undefined && BigInt(m.offset) + 1n >= high) remaining.delete(key);
      }
      if (remaining.size === 0) finish();
    },
  });
  await Promise.race([finished, sleep(120_000)]);
  if (remaining.size > 0) say(`  read-back incomplete: ${[...remaining.keys()].join(', ')}`);
  await consumer.disconnect().catch(() => undefined);
  return counts;
}

function compare(tracker: Tracker, counts: number[] | undefined) {
  let missing = 0;
  let duplicates = 0;
  let extraCopies = 0;
  let unackedPresent = 0;
  const missingSample: number[] = [];
  const len = Math.max(tracker.acked.length, counts?.length ?? 0);
  for (let n = 0; n < len; n++) {
    const c = counts?.[n] ?? 0;
    if (tracker.acked[n] === 1 && c === 0) {
      missing++;
      if (missingSample.length < 10) missingSample.push(n);
    }
    if (c > 1) {
      duplicates++;
      extraCopies += c - 1;
    }
    if (c > 0 && tracker.acked[n] !== 1) unackedPresent++;
  }
  return { acked: tracker.ackedCount, missing, missingSample, duplicates, extraCopies, unackedPresent };
}

// ---------------------------------------------------------------- main
interface Cycle {
  i: number;
  killAt: number;
  startAt: number;
  readyAt: number;
  startupMs: number;
  swallowed?: { swallowedBytes: number; connections: number };
}

interface StageLoop {
  name: string;
  tracker: Tracker;
  worker: StageWorker;
  monitor: ReturnType<typeof startStallMonitor>;
  outTopic: string;
  producer: Producer;
  dlq: () => number;
}

async function main(): Promise<void> {
  const run = `${Date.now().toString(36)}`;
  const topics = {
    raw: `ps.raw.${run}`,
    connect: `ps.connect.${run}`,
    keyless: `ps.keyless.${run}`,
    a: `ps.stage-in.${run}`,
    b: `ps.stage-out.${run}`,
    bc: `ps.stage-c-out.${run}`,
  };
  say(`producer-session experiment: ${JSON.stringify(cfg)}`);
  say(`topics: ${Object.values(topics).join(', ')}`);
  if (args.dry) {
    say('dry run: nothing started');
    return;
  }
  await mkdir(cfg.home, { recursive: true });
  const broker = new PrivateKafka({ home: cfg.home, port: cfg.port, controllerPort: cfg.controllerPort, ...(cfg.mode === 'swallow' ? { advertisedPort: cfg.proxyPort } : {}) });
  const stopBroker = () => broker.killNow();
  process.once('SIGINT', () => (stopBroker(), process.exit(130)));
  process.once('SIGTERM', () => (stopBroker(), process.exit(143)));
  let proxy: BlackholeProxy | undefined;
  const clientLog = join(cfg.home, `client-${run}.log`);
  const logger = makeLogger(clientLog);
  const stopping: (() => Promise<unknown>)[] = [];
  try {
    await broker.prepare();
    if (cfg.mode === 'swallow') proxy = await startBlackholeProxy({ port: cfg.proxyPort, target: cfg.port });
    const firstMs = await broker.start();
    say(`private broker up in ${(firstMs / 1000).toFixed(1)} s (pid ${broker.pid}, ${broker.brokers}${proxy ? `, clients via proxy :${proxy.port}` : ''}, log ${broker.logFile})`);

    const kafkaFor = (name: string) => createKafka({ brokers: [broker.brokers], clientId: `ps-${name}`, logger: logger.child({ client: name }) });
    const admin = new Kafka({ clientId: 'ps-admin', brokers: [broker.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 })) });
    await admin.disconnect();

    // the options connectProducer uses (libs/kafka/outputs.ts), on a plain kafkajs producer
    const rawOptions = { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner };
    const rawProducer = kafkaFor('raw').producer(rawOptions);
    await rawProducer.connect();
    const keylessProducer = cfg.keyless ? kafkaFor('keyless').producer(rawOptions) : undefined;
    await keylessProducer?.connect();
    const connectP = await connectProducer(kafkaFor('connect'));
    const feedP = await connectProducer(kafkaFor('feed'));
    const monitorKafka = new Kafka({ clientId: 'ps-monitor', brokers: [broker.brokers], logLevel: logLevel.NOTHING, requestTimeout: 3_000, connectionTimeout: 1_000, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });

    // stage loops: the real stage worker on A (own group each), output to its own topic through
    // a RAW idempotent producer (`stage`) or a connectProducer one (`stage-c`, as the fleet does)
    const makeStage = async (name: string, outTopic: string, useConnect: boolean): Promise<StageLoop> => {
      const kafka = kafkaFor(name);
      let producer: Producer;
      if (useConnect) producer = await connectProducer(kafka);
      else {
        producer = kafka.producer(rawOptions);
        await producer.connect();
      }
      const tracker = new Tracker(name, outTopic, 'feed');
      const tracked = {
        async send(record: ProducerRecord) {
          const ids = record.messages.map((m) => idOf(String(m.value))?.n ?? -1);
          const k = tracker.begin();
          try {
            const res = await producer.send(record);
            tracker.ok(k, ids);
            return res;
          } catch (err) {
            tracker.fail(k, ids.length, err);
            throw err;
          }
        },
      } as unknown as Producer;
      const groupId = `ps-${name}-${run}`;
      let dlq = 0;
      const worker = createStageWorker<string, string>({
        name,
        kafka,
        groupId,
        inputTopic: topics.a,
        decode: async (v) => ({ ok: true, value: v.toString() }),
        pipeline: pipeline(passStage<string>(name)),
        describe: () => ({ tenantId: null, eventId: null }),
        output: createTopicOutput<string>({ producer: tracked, topic: outTopic, encode: (v) => Buffer.from(v), key: (v) => v }),
        deadLetters: { write: async (l) => void (dlq += l.length) },
        metrics: createPipelineMetrics(name),
        logger: logger.child({ client: `${name}-worker` }),
      });
      await worker.start();
      for (let i = 0; i < 100 && !worker.ready(); i++) await sleep(100);
      stopping.push(() => worker.stop());
      return { name, tracker, worker, monitor: startStallMonitor(monitorKafka, groupId, topics.a), outTopic, producer, dlq: () => dlq };
    };
    const stages = [await makeStage('stage', topics.b, false), await makeStage('stage-c', topics.bc, true)];

    const load = (tracker: Tracker, send: (r: ProducerRecord) => Promise<unknown>, keyed: boolean, concurrency = cfg.concurrency) =>
      startLoad({ tracker, send, keyed, concurrency, paceMs: cfg.paceMs, maxBatch: cfg.maxBatch });
    const loads = [
      load(new Tracker('raw', topics.raw, 'raw'), (r) => rawProducer.send(r), true),
      load(new Tracker('connect', topics.connect, 'connect'), (r) => connectP.send(r), true),
      ...(keylessProducer ? [load(new Tracker('keyless', topics.keyless, 'keyless'), (r) => keylessProducer.send(r), false)] : []),
      load(new Tracker('feed', topics.a, 'feed'), (r) => feedP.send(r), true, 2),
    ];
    const trackers = [...loads.map((l) => l.tracker), ...stages.map((s) => s.tracker)];

    const status = () =>
      trackers
        .map((t) => {
          const o = t.outcomes;
          const last = o.at(-1);
          return `${t.name} ok=${o.filter((x) => x.ok).length} fail=${o.filter((x) => !x.ok).length}${last && !last.ok ? ' (failing)' : ''}`;
        })
        .join(', ');
    const lags = () =>
      stages
        .map((s) => `${s.name} A: ${s.monitor.lagNow().sort((x, y) => x.partition - y.partition).map((l) => `p${l.partition} lag ${l.lag}${l.stalledForMs > 2_500 ? ` (no commit for ${(l.stalledForMs / 1000).toFixed(0)} s)` : ''}`).join(', ')}`)
        .join('; ');

    await sleep(5_000);
    say(`warm-up: ${status()}`);
    const cycles: Cycle[] = [];
    for (let i = 1; i <= cfg.cycles; i++) {
      await sleep(cfg.upMs);
      let swallowed: Cycle['swallowed'];
      if (proxy) {
        await proxy.blackhole(true);
        await sleep(cfg.swallowMs);
      }
      const killAt = Date.now();
      await broker.kill9();
      if (proxy) swallowed = await proxy.blackhole(false);
      await sleep(cfg.downMs);
      const startAt = Date.now();
      const startupMs = await broker.start({ topics: Object.values(topics) });
      const c: Cycle = { i, killAt, startAt, readyAt: Date.now(), startupMs, ...(swallowed ? { swallowed } : {}) };
      cycles.push(c);
      say(`cycle ${i}: killed at ${ts(killAt)}, ready ${((c.readyAt - killAt) / 1000).toFixed(1)} s later; ${status()}; ${lags()}`);
    }

    // settle: no new batches; wait until every pending batch is acknowledged and the stages caught up
    const settleAt = Date.now();
    await sleep(cfg.upMs);
    for (const l of loads) l.drain();
    const drained = () => loads.reduce((n, l) => n + l.pendingBatches(), 0) === 0 && stages.every((s) => s.monitor.caughtUp());
    const settled = await eventually(drained, Math.max(0, cfg.settleMs - (Date.now() - settleAt)), 'drained and caught up', 1_000).catch(() => false);
    const settleEnd = Date.now();
    say(`settle: ${settled ? 'drained and caught up' : 'NOT drained / not caught up'} after ${((settleEnd - settleAt) / 1000).toFixed(1)} s; ${status()}; ${lags()}`);
    for (const l of loads) l.stop();
    await withTimeout(Promise.all(loads.map((l) => l.done)), 15_000, 'load loops');
    for (const s of stages) await s.monitor.stop();
    for (const s of stages) await withTimeout(s.worker.stop(), 20_000, `${s.name} worker stop`);
    stopping.length = 0;
    const inFlightAtEnd = Object.fromEntries(trackers.map((t) => [t.name, t.oldestInFlightMs()]));
    for (const p of [rawProducer, keylessProducer, connectP, feedP, ...stages.map((s) => s.producer)]) if (p) await withTimeout(p.disconnect(), 5_000, 'producer disconnect');

    say('reading back every topic…');
    const counts = await readBack(broker.brokers, Object.values(topics));
    const brokerLog = await readFile(broker.logFile, 'utf8').catch(() => '');
    const brokerErrors: Record<string, number> = {};
    for (const m of brokerLog.matchAll(/(OutOfOrderSequenceException|UnknownProducerIdException|InvalidProducerEpochException|DuplicateSequenceException|Error processing append operation[^\n]{0,60})/g)) {
      const k = (m[1] ?? '').replace(/\d+/g, 'N');
      brokerErrors[k] = (brokerErrors[k] ?? 0) + 1;
    }
    say(`broker log, producer-state errors: ${JSON.stringify(brokerErrors)}`);
    const topicOf: Record<string, string> = { raw: topics.raw, connect: topics.connect, keyless: topics.keyless, feed: topics.a, stage: topics.b, 'stage-c': topics.bc };
    const results = report({ cycles, trackers, stages, counts, topicOf, feedTopic: topics.a, settleAt, settleEnd, settled, inFlightAtEnd });
    const file = join(cfg.home, `results-${cfg.mode}-${run}.json`);
    await writeFile(file, JSON.stringify({ cfg, run, results, brokerErrors, kafkajsLogLines: Object.fromEntries(logCounts) }, null, 2));
    say(`results: ${file}; client log: ${clientLog}; broker log: ${broker.logFile}`);
  } finally {
    for (const s of stopping) await withTimeout(s(), 10_000, 'cleanup');
    await broker.stop();
    await proxy?.close();
    say(`private broker stopped`);
  }
}

// ---------------------------------------------------------------- report
function report(r: {
  cycles: Cycle[];
  trackers: Tracker[];
  stages: StageLoop[];
  counts: Map<string, Map<string, number[]>>;
  topicOf: Record<string, string>;
  feedTopic: string;
  settleAt: number;
  settleEnd: number;
  settled: boolean;
  inFlightAtEnd: Record<string, number>;
}) {
  const out: Record<string, unknown> = {};
  const windows = r.cycles.map((c, idx) => ({ c, from: c.killAt, to: r.cycles[idx + 1]?.killAt ?? r.settleEnd }));
  const countLabels = (os: Outcome[]) => {
    const m = new Map<string, number>();
    for (const o of os) if (!o.ok && o.label) m.set(o.label, (m.get(o.label) ?? 0) + 1);
    return Object.fromEntries([...m.entries()].sort((a, b) => b[1] - a[1]));
  };
  const fmt = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)}s`);

  process.stdout.write('\n================ per cycle ================\n');
  const perCycle: unknown[] = [];
  for (const { c, from, to } of windows) {
    const row: Record<string, unknown> = { cycle: c.i, downMs: c.readyAt - c.killAt, startupMs: c.startupMs, swallowed: c.swallowed };
    const lines: string[] = [];
    for (const t of r.trackers) {
      const os = t.outcomes.filter((o) => o.end >= from && o.end < to);
      const before = t.outcomes.filter((o) => o.ok && o.end < c.killAt).at(-1);
      // NOTE: a success ending after the restart began came from the new broker (kill9 waited for the exit)
      const firstOk = t.outcomes.find((o) => o.ok && o.end >= c.startAt);
      const gapMs = firstOk && before ? firstOk.end - before.end : null;
      const okAfterReady = firstOk && firstOk.end < to ? firstOk.end - c.readyAt : null;
      const lost = os.filter((o) => o.lost).length;
      const labels = countLabels(os);
      row[t.name] = { ok: os.filter((o) => o.ok).length, failed: os.filter((o) => !o.ok).length, lostSession: lost, outageMs: gapMs, firstOkAfterReadyMs: okAfterReady, errors: labels };
      lines.push(
        `  ${t.name.padEnd(8)} ok ${String(os.filter((o) => o.ok).length).padStart(5)} failed ${String(os.filter((o) => !o.ok).length).padStart(4)} lost-session ${lost}  outage ${fmt(gapMs)} first ok ${okAfterReady === null ? 'NONE in cycle' : `${(okAfterReady / 1000).toFixed(1)}s after ready`}` +
          (Object.keys(labels).length ? `\n           ${Object.entries(labels).map(([k, v]) => `${v}× ${k}`).join('\n           ')}` : ''),
      );
    }
    const stallLines: string[] = [];
    for (const st of r.stages) {
      const gaps = st.monitor.gaps.filter((g) => g.from < to && (g.to ?? Infinity) >= from);
      const stall: Record<string, unknown> = {};
      for (const p of [0, 1, 2]) {
        const gp = gaps.filter((g) => g.partition === p);
        const longest = gp.reduce<Gap | undefined>((a, g) => (!a || (g.to ?? r.settleEnd) - g.from > (a.to ?? r.settleEnd) - a.from ? g : a), undefined);
        stall[`p${p}`] = longest ? { noCommitMs: (longest.to ?? r.settleEnd) - longest.from, afterReadyMs: longest.to === null ? null : Math.max(0, longest.to - c.readyAt), open: longest.to === null } : null;
      }
      row[`${st.name}Stall`] = stall;
      stallLines.push(
        `  ${st.name} commits on A: ${Object.entries(stall)
          .map(([p, x]) => {
            const v = x as { noCommitMs: number; afterReadyMs: number | null; open: boolean } | null;
            return v ? `${p} none for ${fmt(v.noCommitMs)} (${v.open ? 'STILL STALLED at end' : `resumed ${fmt(v.afterReadyMs)} after ready`})` : `${p} no gap > 2.5s`;
          })
          .join(', ')}`,
      );
    }
    perCycle.push(row);
    process.stdout.write(
      `cycle ${c.i}: broker away ${fmt(c.readyAt - c.killAt)} (start ${fmt(c.startupMs)})${c.swallowed ? `, swallowed ${c.swallowed.swallowedBytes} B on ${c.swallowed.connections} conns` : ''}\n${lines.join('\n')}\n${stallLines.join('\n')}\n`,
    );
  }
  out.perCycle = perCycle;

  process.stdout.write('\n================ totals ================\n');
  const totals: Record<string, unknown> = {};
  const topicOf = r.topicOf;
  for (const t of r.trackers) {
    const os = t.outcomes;
    const lostOs = os.filter((o) => o.lost);
    const firstLost = lostOs[0];
    let deadForGood: unknown = 'no lost-session error';
    let recoveries: number[] = [];
    if (firstLost) {
      const okAfterFirst = os.filter((o) => o.ok && o.t > firstLost.end);
      // for every lost-session error: time until the next successful send of this producer
      recoveries = lostOs.map((l) => {
        const n = os.find((o) => o.ok && o.t > l.end);
        return n ? n.end - l.end : -1;
      });
      const lastLost = lostOs.at(-1)!;
      const okAfterLast = os.some((o) => o.ok && o.t > lastLost.end);
      deadForGood = {
        firstLostAt: ts(firstLost.end),
        firstLostCycle: r.cycles.filter((c) => c.killAt <= firstLost.end).at(-1)?.i ?? 0,
        successesAfterFirstLost: okAfterFirst.length,
        firstSuccessAfterFirstLostMs: okAfterFirst[0] ? okAfterFirst[0].end - firstLost.end : null,
        // 'never': after some lost-session error this producer never succeeded again
        maxRecoveryMs: recoveries.some((x) => x < 0) ? 'never' : recoveries.reduce((m, x) => Math.max(m, x), 0),
        deadAtEnd: !okAfterLast,
        deadForMsAtEnd: okAfterLast ? 0 : Math.max(0, r.settleEnd - firstLost.end),
      };
    }
    const cmp = compare(t, r.counts.get(topicOf[t.name] ?? '')?.get(t.prefix));
    const row = {
      sends: os.length,
      ok: os.filter((o) => o.ok).length,
      failed: os.filter((o) => !o.ok).length,
      lostSessionErrors: lostOs.length,
      errors: countLabels(os),
      deadForGood,
      attemptedIds: t.attemptedIds,
      abandonedIds: t.abandonedIds,
      maxSendMs: os.reduce((m, o) => Math.max(m, o.end - o.t), 0),
      inFlightAtEndMs: r.inFlightAtEnd[t.name],
      readBack: cmp,
    };
    totals[t.name] = row;
    process.stdout.write(
      `${t.name.padEnd(8)} sends ${row.sends} ok ${row.ok} failed ${row.failed} lost-session ${row.lostSessionErrors}; acked ids ${cmp.acked}, MISSING ${cmp.missing}${cmp.missing ? ` (e.g. ${cmp.missingSample.join(',')})` : ''}, duplicated ids ${cmp.duplicates} (+${cmp.extraCopies} copies), unacked-but-present ${cmp.unackedPresent}, abandoned ${t.abandonedIds}; longest send ${fmt(row.maxSendMs)}\n` +
        `         dead-for-good: ${JSON.stringify(deadForGood)}\n` +
        (Object.keys(row.errors).length ? `         errors: ${Object.entries(row.errors).map(([k, v]) => `${v}× ${k}`).join('\n                 ')}\n` : ''),
    );
  }
  // end to end: every id acknowledged into A reaches each stage's output topic
  const feed = r.trackers.find((t) => t.name === 'feed')!;
  for (const st of r.stages) {
    const e2e = compare(feed, r.counts.get(st.outTopic)?.get('feed'));
    const gaps = st.monitor.gaps;
    const longestGap = (p: number) => gaps.filter((g) => g.partition === p).reduce((m, g) => Math.max(m, (g.to ?? r.settleEnd) - g.from), 0);
    const summary = {
      endToEnd: { ackedIntoA: e2e.acked, missingFromOutput: e2e.missing, missingSample: e2e.missingSample, duplicatedInOutput: e2e.duplicates, extraCopies: e2e.extraCopies },
      longestNoCommitMs: { p0: longestGap(0), p1: longestGap(1), p2: longestGap(2) },
      gapsOver10s: gaps.filter((g) => (g.to ?? r.settleEnd) - g.from > 10_000).length,
      gapsOver30s: gaps.filter((g) => (g.to ?? r.settleEnd) - g.from > 30_000).length,
      stillStalledAtEnd: gaps.filter((g) => g.to === null).map((g) => ({ partition: g.partition, sinceMs: r.settleEnd - g.from, lag: g.lagAtEnd })),
      lagAtEnd: st.monitor.lagNow(),
      deadLetters: st.dlq(),
      monitorErrors: [...st.monitor.errors.values()].reduce((a, b) => a + b, 0),
    };
    totals[`${st.name}Loop`] = summary;
    process.stdout.write(
      `${st.name} loop, end to end (A → ${st.name} → ${st.outTopic}): acked into A ${e2e.acked}, MISSING ${e2e.missing}${e2e.missing ? ` (e.g. ${e2e.missingSample.join(',')})` : ''}, duplicated ${e2e.duplicates} (+${e2e.extraCopies}); longest no-commit per partition ${JSON.stringify(summary.longestNoCommitMs)} ms; gaps > 10 s ${summary.gapsOver10s}, > 30 s ${summary.gapsOver30s}; still stalled at end ${JSON.stringify(summary.stillStalledAtEnd)}\n`,
    );
  }
  totals.settle = { settled: r.settled, ms: r.settleEnd - r.settleAt };
  process.stdout.write(`settle: ${JSON.stringify(totals.settle)}\n`);
  process.stdout.write('\nkafkajs / worker log lines (client | message, digits masked):\n');
  for (const [k, v] of [...logCounts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) process.stdout.write(`  ${String(v).padStart(6)}  ${k}\n`);
  out.totals = totals;
  return out;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`experiment failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
