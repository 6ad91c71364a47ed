// A private single-node KRaft Kafka (broker+controller) for experiments and the producer-session
// regression test: its own ports, config and log dir, started from the jars that
// scripts/services/kafka.ts fetched into .services/kafka/libs. It never touches the shared broker
// (9092/9093/9094) nor .services/state.json.
// NOTE: the config, cluster-id and java command lines are a trimmed copy of scripts/services/kafka.ts
// (no SASL_SSL listener, no state file): that module hard-codes the shared ports and paths.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { eventually, GiveUp } from '../../../test/support/poll.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const sharedKafkaLibs = join(repoRoot, '.services', 'kafka', 'libs');

export interface PrivateKafkaOptions {
  /** dir for config, data and log (e.g. /tmp/ps-kafka) */
  home: string;
  port: number;
  controllerPort: number;
  /** port the broker advertises to clients (a proxy in front of `port`); default `port` */
  advertisedPort?: number;
  /** more server.properties lines (e.g. a shorter broker.session.timeout.ms for tests) */
  extraConfig?: string[];
  heap?: string[];
}

/** Kafka's Uuid.randomUuid: 16 random bytes as unpadded base64url, never starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      s.destroy();
      res(v);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export class PrivateKafka {
  readonly brokers: string;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly configFile: string;
  private readonly log4jFile: string;
  private readonly pidFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly onExit = () => this.killNow();

  /** Every value on partition 0 of `topic`, in order, read from the beginning by a fresh group. */
  async readValues(topic: string): Promise<string[]> {
    const kafka = new Kafka({ clientId: 'ps-read', brokers: [this.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const high = Number((await admin.fetchTopicOffsets(topic))[0]?.high ?? 0);
    await admin.disconnect();
    const values: string[] = [];
    if (high === 0) return values;
    const consumer = kafka.consumer({ groupId: `ps-read-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          values.push(String(message.value));
          if (Number(message.offset) + 1 >= high) resolve();
        },
      });
    });
    await consumer.disconnect();
    return values;
  }

  constructor(private readonly opts: PrivateKafkaOptions) {
    this.brokers = `127.0.0.1:${opts.port}`;
    this.dataDir = join(opts.home, 'data');
    this.logFile = join(opts.home, 'kafka.log');
    this.configFile = join(opts.home, 'config', 'server.properties');
    this.log4jFile = join(opts.home, 'config', 'log4j.properties');
    this.pidFile = join(opts.home, 'kafka.pid');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** A broker of an earlier run of this same home (identified by its config path in cmdline) is killed. */
  private async killStale(): Promise<void> {
    if (!existsSync(this.pidFile)) return;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return;
    }
    if (!cmdline.includes(this.configFile)) return;
    process.kill(pid, 'SIGKILL');
    await eventually(() => !existsSync(`/proc/${pid}`), 5_000, `pid ${pid} gone`, 100).catch(() => undefined);
  }

  /** Writes config and formats a fresh log dir (wipes an old one). */
  async prepare(): Promise<void> {
    if (!existsSync(join(sharedKafkaLibs, 'kafka_2.13-3.9.2.jar')) && !existsSync(sharedKafkaLibs)) {
      throw new Error(`no Kafka jars in ${sharedKafkaLibs} (scripts/services fetches them)`);
    }
    await this.killStale();
    for (const port of [this.opts.port, this.opts.controllerPort]) {
      if (await portOpen(port)) throw new Error(`port 127.0.0.1:${port} is already in use`);
    }
    await mkdir(dirname(this.configFile), { recursive: true });
    const { port, controllerPort } = this.opts;
    await writeFile(
      this.configFile,
      [
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${this.opts.advertisedPort ?? port}`,
        'inter.broker.listener.name=PLAINTEXT',
        'controller.listener.names=CONTROLLER',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        `log.dirs=${this.dataDir}`,
        'default.replication.factor=1',
        'min.insync.replicas=1',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'transaction.state.log.num.partitions=1',
        'num.partitions=1',
        'auto.create.topics.enable=false',
        'group.initial.rebalance.delay.ms=0',
        'num.network.threads=2',
        'num.io.threads=2',
        'num.recovery.threads.per.data.dir=1',
        'background.threads=2',
        'log.cleaner.threads=1',
        'log.cleaner.dedupe.buffer.size=16777216',
        ...(this.opts.extraConfig ?? []),
        '',
      ].join('\n'),
    );
    await writeFile(
      this.log4jFile,
      [
        'log4j.rootLogger=INFO, stdout',
        'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
        'log4j.logger.kafka.request.logger=WARN',
        'log4j.logger.kafka.log.LogCleaner=WARN',
        'log4j.logger.state.change.logger=WARN',
        'log4j.logger.org.apache.kafka.clients=WARN',
        '',
      ].join('\n'),
    );
    await rm(this.dataDir, { recursive: true, force: true });
    await rm(this.logFile, { force: true });
    await mkdir(this.dataDir, { recursive: true });
    const out = await this.java(['kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', this.configFile]);
    if (out.code !== 0) throw new Error(`StorageTool format failed (${out.code}): ${out.output.slice(-2000)}`);
  }

  private java(args: string[]): Promise<{ code: number; output: string }> {
    return new Promise((res, rej) => {
      const c = spawn('java', [`-Dlog4j.configuration=file:${this.log4jFile}`, '-cp', `${sharedKafkaLibs}/*`, ...args], { cwd: this.opts.home });
      let output = '';
      c.stdout.on('data', (d: Buffer) => (output += d.toString()));
      c.stderr.on('data', (d: Buffer) => (output += d.toString()));
      c.once('error', rej);
      c.once('exit', (code) => res({ code: code ?? -1, output }));
    });
  }

  /** Starts the broker on the existing log dir and waits until `usable` (metadata answers, topics have leaders). */
  async start(opts: { timeoutMs?: number; topics?: string[] } = {}): Promise<number> {
    if (this.child) throw new Error('private kafka already running');
    await appendFile(this.logFile, `\n==== ${new Date().toISOString()} start ====\n`);
    const fd = openSync(this.logFile, 'a');
    const started = Date.now();
    try {
      const child = spawn(
        'java',
        [
          ...(this.opts.heap ?? ['-Xms128m', '-Xmx384m']),
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-Djava.awt.headless=true',
          `-Dlog4j.configuration=file:${this.log4jFile}`,
          '-cp',
          `${sharedKafkaLibs}/*`,
          'kafka.Kafka',
          this.configFile,
        ],
        { cwd: this.opts.home, stdio: ['ignore', fd, fd], detached: true },
      );
      this.child = child;
      this.exited = new Promise<void>((r) => child.once('exit', () => r()));
      void this.exited.then(() => {
        if (this.child === child) this.child = undefined;
      });
      process.on('exit', this.onExit);
      await new Promise<void>((r, j) => {
        child.once('spawn', () => r());
        child.once('error', j);
      });
      await writeFile(this.pidFile, String(child.pid));
    } finally {
      closeSync(fd);
    }
    const timeoutMs = opts.timeoutMs ?? 90_000;
    await eventually(
      async () => {
        if (!this.child) throw new GiveUp(`private kafka exited during start; see ${this.logFile}`);
        return this.usable(opts.topics ?? []);
      },
      Math.max(0, started + timeoutMs - Date.now()),
      `private kafka usable (within ${timeoutMs} ms; see ${this.logFile})`,
      250,
    );
    return Date.now() - started;
  }

  /** Metadata answers and every partition of `topics` has a leader. */
  async usable(topics: string[]): Promise<boolean> {
    if (!(await portOpen(this.opts.port))) return false;
    const admin = new Kafka({ clientId: 'ps-probe', brokers: [this.brokers], logLevel: logLevel.NOTHING, connectionTimeout: 1_000, requestTimeout: 3_000, retry: { retries: 0 } }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length === 0) return false;
      if (topics.length > 0) {
        const md = await admin.fetchTopicMetadata({ topics });
        if (!md.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0 && p.partitionErrorCode === 0))) return false;
      }
      return true;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** kill -9, waits until the process is gone. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c?.pid) return;
    process.kill(c.pid, 'SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** Synchronous SIGKILL (for exit handlers). */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  /** Ends the broker (SIGKILL: its data dir is throwaway) and removes the exit hook. */
  async stop(): Promise<void> {
    await this.kill9();
    process.off('exit', this.onExit);
    await rm(this.pidFile, { force: true });
  }
}
