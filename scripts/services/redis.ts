// The machine's Redis on 127.0.0.1:6379: probe with a raw PING (no client retry loops), start it
// with the machine's own command line when it is down, stop it by the pid it reports.
import { mkdir } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { isOurProcess, isPortOpen, progress, runCommand, ServiceSetupError, stopProcess, waitUntilReady } from './process-control.js';
import { repoRoot } from './paths.js';
import type { ServiceRecord } from './state.js';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;
export const redisUrl = `redis://${REDIS_HOST}:${REDIS_PORT}`;
const redisMarker = 'redis-server';
const redisLogFile = '/var/log/redis/ci.log';

// NOTE: exactly the command this machine (and CI) uses, so a Redis we restart is
// indistinguishable from the one the machine started: no snapshots, no AOF.
const redisArgs = [
  '--daemonize', 'yes',
  '--bind', '127.0.0.1', '-::1',
  '--port', String(REDIS_PORT),
  '--save', '',
  '--appendonly', 'no',
  '--dir', '/var/lib/redis',
  '--logfile', redisLogFile,
];

/** Sends one inline command and returns the raw reply (enough for PING and INFO). */
async function redisCommand(parts: readonly string[], timeoutMs = 1_000): Promise<string> {
  return new Promise((resolveReply, reject) => {
    const socket = createConnection({ host: REDIS_HOST, port: REDIS_PORT });
    let buffer = '';
    const finish = (err: Error | undefined, reply?: string): void => {
      socket.destroy();
      if (err) reject(err);
      else resolveReply(reply ?? '');
    };
    socket.setTimeout(timeoutMs, () => finish(new Error('redis: no reply')));
    socket.once('error', (err) => finish(err));
    socket.once('connect', () => {
      socket.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const firstLine = buffer.indexOf('\r\n');
      if (firstLine < 0) return;
      if (buffer[0] !== '$') return finish(undefined, buffer.slice(0, firstLine));
      const length = Number(buffer.slice(1, firstLine));
      if (length < 0) return finish(undefined, '');
      if (Buffer.byteLength(buffer) >= firstLine + 2 + length + 2) finish(undefined, buffer.slice(firstLine + 2, firstLine + 2 + length));
    });
    socket.once('end', () => finish(new Error('redis: connection closed')));
  });
}

/** `ready`: PONG; `closed`: nothing listens; `other`: something else (or a Redis that wants AUTH). */
export async function probeRedis(): Promise<'ready' | 'closed' | 'other'> {
  try {
    return (await redisCommand(['PING'])) === '+PONG' ? 'ready' : 'other';
  } catch {
    return (await isPortOpen(REDIS_HOST, REDIS_PORT)) ? 'other' : 'closed';
  }
}

/** The pid of the Redis answering on 6379, from INFO server. */
export async function redisPid(): Promise<number | undefined> {
  try {
    const info = await redisCommand(['INFO', 'server']);
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function startRedisProcess(opts: { timeoutMs?: number } = {}): Promise<ServiceRecord> {
  if (await isPortOpen(REDIS_HOST, REDIS_PORT)) {
    throw new ServiceSetupError(`redis: port ${REDIS_HOST}:${REDIS_PORT} is in use by something that does not answer PING; free it or set REDIS_URL`);
  }
  progress(`redis: starting redis-server on ${REDIS_HOST}:${REDIS_PORT} (log ${redisLogFile})`);
  const started = Date.now();
  await mkdir('/var/lib/redis', { recursive: true });
  await mkdir('/var/log/redis', { recursive: true });
  // NOTE: --daemonize yes: the command forks the server and exits, so we wait for it to finish.
  const { code, output } = await runCommand('redis-server', redisArgs, {
    cwd: repoRoot,
    missingHint: 'install Redis (Debian: apt-get install redis-server)',
  });
  if (code !== 0) throw new Error(`redis: redis-server exited ${code}:\n${output.slice(-2000)}`);
  await waitUntilReady({
    name: 'redis',
    check: async () => (await probeRedis()) === 'ready',
    timeoutMs: opts.timeoutMs ?? 15_000,
    logFile: redisLogFile,
    intervalMs: 50,
  });
  const pid = await redisPid();
  if (pid === undefined) throw new Error('redis: started but INFO server reports no process_id');
  return { pid, marker: redisMarker, startedAt: new Date(started).toISOString(), logFile: redisLogFile, startupMs: Date.now() - started };
}

/**
 * Stops whichever local Redis answers on 6379 (ours or the machine's): the fleet's
 * "Redis stopped" test needs the machine's one gone too. Returns false when none was running.
 */
export async function stopRedisProcess(): Promise<boolean> {
  const pid = await redisPid();
  if (pid === undefined) return false;
  if (!(await isOurProcess(pid, redisMarker))) {
    throw new ServiceSetupError(`redis: the server on ${REDIS_HOST}:${REDIS_PORT} reports pid ${pid}, which is not a local redis-server; not stopping it`);
  }
  return stopProcess(pid, redisMarker, { name: 'redis', termTimeoutMs: 10_000 });
}
