// Apache Kafka 3.9 (KRaft, one combined broker+controller on 127.0.0.1:9092, SASL_SSL on 9094)
// from Maven Central jars: fetch, format the log dir, start detached, wait until usable, stop.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { fetchMavenDependencies, requireJava } from './java-tools.js';
import { ensureBrokerCertificates, hasScramUser, KAFKA_SASL_SSL_PORT, kafkaSecureEndpoint as secureEndpointOf, newScramUser, writeScramUser, type KafkaSecureEndpoint } from './kafka-tls.js';
import { scriptsDir, servicePath, shortPath } from './paths.js';
import {
  progress,
  runCommand,
  ServiceSetupError,
  spawnDetached,
  stopRecorded,
  awaitStarted,
  isPortOpen,
} from './process-control.js';
import type { ServiceRecord } from './state.js';

export const KAFKA_HOST = '127.0.0.1';
export const KAFKA_PORT = 9092;
export const KAFKA_CONTROLLER_PORT = 9093;
export const kafkaBrokers = `${KAFKA_HOST}:${KAFKA_PORT}`;

const kafkaHome = servicePath('kafka');
const libsDir = join(kafkaHome, 'libs');
export const kafkaDataDir = join(kafkaHome, 'data');
const configDir = join(kafkaHome, 'config');
const serverProperties = join(configDir, 'server.properties');
const log4jProperties = join(configDir, 'log4j.properties');
export const kafkaLogFile = join(kafkaHome, 'kafka.log');
const pidFile = join(kafkaHome, 'kafka.pid');
/** NOTE: the config path is unique to this checkout, so it identifies our broker in /proc/<pid>/cmdline. */
export const kafkaMarker = serverProperties;

const probeTopic = 'tracklane.services.probe';
const probeGroup = 'tracklane-services-probe';
// NOTE: 384 MB is plenty for test traffic and keeps the 2-core machine responsive; override
// with KAFKA_HEAP_OPTS (same name as Kafka's own scripts) for heavier benchmarks.
const defaultHeap = ['-Xms128m', '-Xmx384m'];

export async function ensureKafkaJars(): Promise<void> {
  await requireJava();
  await fetchMavenDependencies({
    name: 'kafka',
    pom: join(scriptsDir, 'kafka', 'pom.xml'),
    outputDir: libsDir,
    extraArgs: ['-DincludeScope=runtime'],
  });
}

function quietKafka(): Kafka {
  return new Kafka({
    clientId: 'tracklane-services-probe',
    brokers: [kafkaBrokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
}

/** `ready`: a Kafka broker answers; `closed`: nothing listens; `other`: the port is taken by something else (or not answering yet). */
export async function probeKafka(): Promise<'ready' | 'closed' | 'other'> {
  if (!(await isPortOpen(KAFKA_HOST, KAFKA_PORT))) return 'closed';
  const admin = quietKafka().admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 ? 'ready' : 'other';
  } catch {
    return 'other';
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Ready means usable by tests, not merely listening: metadata answers, a topic gets a leader,
 * the group coordinator is loaded and an idempotent producer gets its producer id.
 * TRICKY: right after start the coordinators answer "loading"/"not available" for a second;
 * waiting here keeps that noise and delay out of the first test.
 */
async function kafkaUsable(): Promise<boolean> {
  const kafka = quietKafka();
  const admin = kafka.admin();
  // NOTE: KafkaJS refuses an idempotent producer without retries; keep them few and short.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 300 } });
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) return false;
    await admin.createTopics({ topics: [{ topic: probeTopic, numPartitions: 1 }], waitForLeaders: true, timeout: 5_000 });
    await admin.fetchOffsets({ groupId: probeGroup, topics: [probeTopic] });
    await producer.connect();
    await producer.send({ topic: probeTopic, acks: -1, messages: [{ value: 'probe' }] });
    return await secureListenerUsable();
  } catch {
    return false;
  } finally {
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/** The SASL_SSL listener takes the SCRAM user over TLS verified against the test CA. */
async function secureListenerUsable(): Promise<boolean> {
  const ep = await kafkaSecureEndpoint();
  const admin = new Kafka({
    clientId: 'tracklane-services-probe',
    brokers: [ep.brokers],
    ssl: { ca: [await readFile(ep.caFile, 'utf8')], rejectUnauthorized: true },
    sasl: { mechanism: ep.mechanism, username: ep.username, password: ep.password },
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Kafka's Uuid.randomUuid: 16 random bytes as unpadded base64url, never starting with '-'. */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** The SASL_SSL listener of the broker our scripts started: its address, CA file and SCRAM user. */
export function kafkaSecureEndpoint(): Promise<KafkaSecureEndpoint> {
  return secureEndpointOf(kafkaDataDir);
}

async function writeConfig(tls: { keystore: string; storePassword: string }): Promise<void> {
  await mkdir(configDir, { recursive: true });
  const template = await readFile(join(scriptsDir, 'kafka', 'server.properties'), 'utf8');
  const config = template.replaceAll('@LOG_DIR@', kafkaDataDir).replaceAll('@KEYSTORE@', tls.keystore).replaceAll('@STORE_PASSWORD@', tls.storePassword);
  await writeFile(serverProperties, config, { mode: 0o600 });
  await writeFile(log4jProperties, await readFile(join(scriptsDir, 'kafka', 'log4j.properties'), 'utf8'));
}

function javaClasspath(): string[] {
  return ['-cp', `${libsDir}/*`];
}

/**
 * Formats the KRaft log dir when it is missing or `fresh` (wiping old topics and offsets), with
 * the SCRAM user of the SASL_SSL listener. A dir formatted before that listener existed (no SCRAM
 * user) is formatted again: SCRAM users can only be added this way before the broker opens.
 */
async function formatLogDir(fresh: boolean): Promise<void> {
  const formatted = existsSync(join(kafkaDataDir, 'meta.properties'));
  if (formatted && !fresh && !hasScramUser(kafkaDataDir)) progress('kafka: log dir has no SCRAM user (made before the SASL_SSL listener); formatting it again');
  if (fresh || (formatted && !hasScramUser(kafkaDataDir))) await rm(kafkaDataDir, { recursive: true, force: true });
  if (existsSync(join(kafkaDataDir, 'meta.properties'))) return;
  await mkdir(kafkaDataDir, { recursive: true });
  const scram = newScramUser();
  const { code, output } = await runCommand(
    'java',
    [`-Dlog4j.configuration=file:${log4jProperties}`, ...javaClasspath(), 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', serverProperties, ...scram.formatArgs],
    { cwd: kafkaHome, missingHint: 'install a Java 17+ runtime' },
  );
  // NOTE: the output never echoes the --add-scram arguments, so it may be quoted
  if (code !== 0) throw new Error(`kafka: StorageTool format failed (exit ${code}):\n${output.slice(-2000)}`);
  await writeScramUser(kafkaDataDir, scram.password);
}

/**
 * Starts the broker detached and waits until it is usable. With fresh=false an existing log dir
 * is kept (topics, offsets and data survive a stopKafka/startKafka cycle).
 */
export async function startKafkaProcess(opts: { fresh: boolean; timeoutMs?: number }): Promise<ServiceRecord> {
  for (const port of [KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_SASL_SSL_PORT]) {
    if (await isPortOpen(KAFKA_HOST, port)) {
      throw new ServiceSetupError(`kafka: port ${KAFKA_HOST}:${port} is in use by something that is not our Kafka broker; free it or set KAFKA_BROKERS to a running broker`);
    }
  }
  await ensureKafkaJars();
  await writeConfig(await ensureBrokerCertificates(opts.fresh));
  await formatLogDir(opts.fresh);
  if (opts.fresh) await rm(kafkaLogFile, { force: true });
  await appendFile(kafkaLogFile, `\n==== ${new Date().toISOString()} start (fresh=${opts.fresh}) ====\n`);

  progress(`kafka: starting on ${kafkaBrokers} (log ${shortPath(kafkaLogFile)})`);
  const started = Date.now();
  const heap = process.env.KAFKA_HEAP_OPTS?.split(/\s+/).filter(Boolean) ?? defaultHeap;
  const pid = await spawnDetached({
    command: 'java',
    args: [
      ...heap,
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${log4jProperties}`,
      ...javaClasspath(),
      'kafka.Kafka',
      serverProperties,
    ],
    cwd: kafkaHome,
    logFile: kafkaLogFile,
    missingHint: 'install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)',
  });
  return awaitStarted({
    name: 'kafka',
    pid,
    marker: kafkaMarker,
    logFile: kafkaLogFile,
    pidFile,
    startedAt: started,
    check: kafkaUsable,
    timeoutMs: opts.timeoutMs ?? 90_000,
    intervalMs: 250,
  });
}

/** SIGTERM (the broker's shutdown hook flushes and closes the log cleanly), SIGKILL after 30 s. */
export async function stopKafkaProcess(record: ServiceRecord): Promise<boolean> {
  return stopRecorded(record, { name: 'kafka', pidFile, termTimeoutMs: 30_000 });
}
