// Apicurio Registry (Confluent-compatible API under /apis/ccompat/v7, in-memory storage) from
// Maven Central's ready-built Quarkus distribution: fetch, unpack, start detached, wait, stop.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchMavenDependencies, requireJava } from './java-tools.js';
import { scriptsDir, servicePath, shortPath } from './paths.js';
import {
  isPortOpen,
  progress,
  runCommand,
  ServiceSetupError,
  spawnDetached,
  stopRecorded,
  awaitStarted,
} from './process-control.js';
import type { ServiceRecord } from './state.js';

export const REGISTRY_HOST = '127.0.0.1';
export const REGISTRY_PORT = 8081;
// NOTE: Quarkus's management interface (health) would default to 0.0.0.0:9000; keep it on loopback.
const REGISTRY_MANAGEMENT_PORT = 9001;
export const schemaRegistryUrl = `http://${REGISTRY_HOST}:${REGISTRY_PORT}/apis/ccompat/v7`;

const registryHome = servicePath('registry');
const downloadDir = join(registryHome, 'download');
const distDir = join(registryHome, 'dist');
export const registryLogFile = join(registryHome, 'registry.log');
const pidFile = join(registryHome, 'registry.pid');
const defaultHeap = ['-Xms64m', '-Xmx384m'];

/** Fetches the tar.gz with Maven and unpacks it once per archive (dist/.archive names it). */
export async function ensureRegistryDistribution(): Promise<string> {
  await requireJava();
  const fetched = await fetchMavenDependencies({
    name: 'registry',
    pom: join(scriptsDir, 'registry', 'pom.xml'),
    outputDir: downloadDir,
  });
  const archives = (await readdir(downloadDir)).filter((f) => f.endsWith('.tar.gz'));
  const archive = archives[0];
  if (archive === undefined || archives.length !== 1) {
    throw new Error(`registry: expected one .tar.gz in ${shortPath(downloadDir)}, found ${archives.length}`);
  }
  if (fetched || !existsSync(join(distDir, '.archive'))) {
    const tmp = `${distDir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const { code, output } = await runCommand('tar', ['-xzf', join(downloadDir, archive), '-C', tmp], {
      cwd: registryHome,
      missingHint: 'install tar',
    });
    if (code !== 0) throw new Error(`registry: unpacking ${archive} failed:\n${output.slice(-2000)}`);
    await writeFile(join(tmp, '.archive'), archive + '\n');
    await rm(distDir, { recursive: true, force: true });
    await rename(tmp, distDir);
  }
  return runnableJar();
}

/**
 * The archive layout differs by version: 3.3.x has quarkus-run.jar at the root, 3.1–3.2 under
 * quarkus-app/, 2.6.x and 3.0.x an `apicurio-registry-app-<v>-runner.jar` beside lib/.
 */
async function runnableJar(): Promise<string> {
  for (const candidate of [join(distDir, 'quarkus-run.jar'), join(distDir, 'quarkus-app', 'quarkus-run.jar')]) {
    if (existsSync(candidate)) return candidate;
  }
  const runner = (await readdir(distDir)).find((f) => f.endsWith('-runner.jar'));
  if (runner === undefined) throw new Error(`registry: no runnable jar in ${shortPath(distDir)}`);
  return join(distDir, runner);
}

/** `ready`: the Confluent-compatible API answers; `closed`: nothing listens; `other`: something else does. */
export async function probeRegistry(): Promise<'ready' | 'closed' | 'other'> {
  try {
    const res = await fetch(`${schemaRegistryUrl}/subjects`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status === 200 ? 'ready' : 'other';
  } catch {
    return (await isPortOpen(REGISTRY_HOST, REGISTRY_PORT)) ? 'other' : 'closed';
  }
}

export async function startRegistryProcess(opts: { timeoutMs?: number } = {}): Promise<ServiceRecord> {
  for (const port of [REGISTRY_PORT, REGISTRY_MANAGEMENT_PORT]) {
    if (await isPortOpen(REGISTRY_HOST, port)) {
      throw new ServiceSetupError(
        `registry: port ${REGISTRY_HOST}:${port} is in use by something that is not a schema registry; free it or set SCHEMA_REGISTRY_URL`,
      );
    }
  }
  const jar = await ensureRegistryDistribution();
  await mkdir(registryHome, { recursive: true });
  await writeFile(registryLogFile, `==== ${new Date().toISOString()} start ====\n`);
  progress(`registry: starting Apicurio on ${schemaRegistryUrl} (log ${shortPath(registryLogFile)})`);
  const started = Date.now();
  const heap = process.env.REGISTRY_HEAP_OPTS?.split(/\s+/).filter(Boolean) ?? defaultHeap;
  const pid = await spawnDetached({
    command: 'java',
    args: [
      ...heap,
      // NOTE: serial GC: a small, mostly idle heap on 2 cores; fewer GC threads competing with Kafka.
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      `-Dquarkus.http.host=${REGISTRY_HOST}`,
      `-Dquarkus.http.port=${REGISTRY_PORT}`,
      `-Dquarkus.management.host=${REGISTRY_HOST}`,
      `-Dquarkus.management.port=${REGISTRY_MANAGEMENT_PORT}`,
      '-jar',
      jar,
    ],
    cwd: registryHome,
    logFile: registryLogFile,
    missingHint: 'install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)',
  });
  return awaitStarted({
    name: 'registry',
    pid,
    marker: jar,
    logFile: registryLogFile,
    pidFile,
    startedAt: started,
    check: async () => (await probeRegistry()) === 'ready',
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
}

export async function stopRegistryProcess(record: ServiceRecord): Promise<boolean> {
  return stopRecorded(record, { name: 'registry', pidFile, termTimeoutMs: 20_000 });
}
