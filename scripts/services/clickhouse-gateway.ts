// The test-only ClickHouse HTTP gateway (test/support/clickhouse-gateway-main.ts: one process
// owning a chDB engine) on 127.0.0.1:8123, started as a detached node process.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { awaitStarted, isPortOpen, progress, ServiceSetupError, spawnDetached, stopRecorded } from './process-control.js';
import { repoRoot, servicePath, shortPath } from './paths.js';
import type { ServiceRecord } from './state.js';

export const CLICKHOUSE_HOST = '127.0.0.1';
export const CLICKHOUSE_PORT = 8123;
export const clickhouseUrl = `http://${CLICKHOUSE_HOST}:${CLICKHOUSE_PORT}`;
/**
 * The one user the shared gateway accepts (a wrong one: 516 AUTHENTICATION_FAILED, as a server
 * answers). NOTE: a fixed test credential of a test-only server on 127.0.0.1, so every test
 * process (and a gateway started by an earlier run) agrees on it without a file to share.
 */
export const clickhouseUser = 'tracklane';
export const clickhousePassword = 'tracklane-test-gateway';

const gatewayHome = servicePath('clickhouse');
export const clickhouseDataDir = join(gatewayHome, 'data');
export const clickhouseLogFile = join(gatewayHome, 'gateway.log');
const pidFile = join(gatewayHome, 'gateway.pid');
const gatewayMain = join(repoRoot, 'test', 'support', 'clickhouse-gateway-main.ts');

/** `ready`: GET /ping answers `Ok.`; `closed`: nothing listens; `other`: something else does. */
export async function probeClickHouse(): Promise<'ready' | 'closed' | 'other'> {
  try {
    const res = await fetch(`${clickhouseUrl}/ping`, { signal: AbortSignal.timeout(2_000) });
    const body = await res.text();
    return res.status === 200 && body.trim() === 'Ok.' ? 'ready' : 'other';
  } catch {
    return (await isPortOpen(CLICKHOUSE_HOST, CLICKHOUSE_PORT)) ? 'other' : 'closed';
  }
}

export async function startClickHouseGatewayProcess(opts: { fresh: boolean; timeoutMs?: number }): Promise<ServiceRecord> {
  if (!existsSync(gatewayMain)) {
    throw new ServiceSetupError(`clickhouse: ${shortPath(gatewayMain)} is missing (the chDB HTTP gateway entry point); cannot serve ${clickhouseUrl}`);
  }
  if (await isPortOpen(CLICKHOUSE_HOST, CLICKHOUSE_PORT)) {
    throw new ServiceSetupError(`clickhouse: port ${CLICKHOUSE_HOST}:${CLICKHOUSE_PORT} is in use by something that does not answer GET /ping with Ok.; free it or set CLICKHOUSE_URL`);
  }
  // NOTE: chDB allows one process per data dir; a fresh start also drops tables of earlier runs.
  if (opts.fresh) await rm(clickhouseDataDir, { recursive: true, force: true });
  await mkdir(clickhouseDataDir, { recursive: true });
  await writeFile(clickhouseLogFile, `==== ${new Date().toISOString()} start (fresh=${opts.fresh}) ====\n`);
  progress(`clickhouse: starting the chDB gateway on ${clickhouseUrl} (log ${shortPath(clickhouseLogFile)})`);
  const started = Date.now();
  const pid = await spawnDetached({
    command: process.execPath,
    args: ['--import', 'tsx', gatewayMain],
    cwd: repoRoot,
    env: {
      ...process.env,
      CLICKHOUSE_GATEWAY_PORT: String(CLICKHOUSE_PORT),
      CLICKHOUSE_GATEWAY_DATA_DIR: clickhouseDataDir,
      CLICKHOUSE_GATEWAY_USER: clickhouseUser,
      CLICKHOUSE_GATEWAY_PASSWORD: clickhousePassword,
    },
    logFile: clickhouseLogFile,
    missingHint: 'node itself could not be started',
  });
  return awaitStarted({
    name: 'clickhouse',
    pid,
    marker: gatewayMain,
    logFile: clickhouseLogFile,
    pidFile,
    startedAt: started,
    check: async () => (await probeClickHouse()) === 'ready',
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

export async function stopClickHouseGatewayProcess(record: ServiceRecord): Promise<boolean> {
  return stopRecorded(record, { name: 'clickhouse', pidFile, termTimeoutMs: 15_000 });
}
