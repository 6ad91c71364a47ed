// Detached child processes for the dev/test services: spawned in their own process group with
// output to a log file, recognised by pid plus command line, stopped with SIGTERM then SIGKILL.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceRecord } from './state.js';

export function progress(message: string): void {
  process.stderr.write(`[services] ${message}\n`);
}

/** Thrown for conditions a developer must fix (missing tool, port taken …); the message says how. */
export class ServiceSetupError extends Error {
  override name = 'ServiceSetupError';
}

export interface SpawnDetachedOptions {
  command: string;
  args: readonly string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** what to tell the developer when `command` is not installed */
  missingHint: string;
}

/**
 * Starts a process that outlives its parent: own session and process group (so Ctrl-C in the
 * parent's terminal does not reach it), stdin closed, stdout and stderr appended to logFile.
 */
export async function spawnDetached(opts: SpawnDetachedOptions): Promise<number> {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(opts.command, [...opts.args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const pid = await new Promise<number>((resolvePid, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT' ? new ServiceSetupError(`${opts.command} not found: ${opts.missingHint}`) : err);
      });
      child.once('spawn', () => resolvePid(child.pid ?? -1));
    });
    // NOTE: unref so the parent (services-up, vitest) can exit; libuv still reaps the child if it
    // dies while the parent runs, so a stopped service never lingers as a zombie that looks alive.
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}

/** Runs a command to completion, capturing its output; rejects with a clear message on ENOENT. */
export async function runCommand(
  command: string,
  args: readonly string[],
  opts: { cwd: string; missingHint: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, [...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new ServiceSetupError(`${command} not found: ${opts.missingHint}`) : err);
    });
    child.once('close', (code) => resolveRun({ code: code ?? 1, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/**
 * True when pid is a live (non-zombie) process whose command line contains marker.
 * TRICKY: pids are recycled; the marker (a path under .services/ or the program name) keeps us
 * from signalling an unrelated process that happens to have a recorded pid.
 */
export async function isOurProcess(pid: number, marker: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

/** SIGTERM, wait up to termTimeoutMs, then SIGKILL the process group. Returns false if it was not running. */
export async function stopProcess(
  pid: number,
  marker: string,
  opts: { name: string; termTimeoutMs: number },
): Promise<boolean> {
  if (!(await isOurProcess(pid, marker))) return false;
  const started = Date.now();
  signal(pid, 'SIGTERM');
  while (Date.now() - started < opts.termTimeoutMs) {
    if (!(await isOurProcess(pid, marker))) return true;
    await sleep(100);
  }
  progress(`${opts.name}: still running ${opts.termTimeoutMs / 1000} s after SIGTERM; sending SIGKILL`);
  // NOTE: the service is its own process-group leader (spawnDetached), so -pid reaches helpers too.
  if (!signal(-pid, 'SIGKILL')) signal(pid, 'SIGKILL');
  const killed = Date.now();
  while (Date.now() - killed < 5_000) {
    if (!(await isOurProcess(pid, marker))) return true;
    await sleep(100);
  }
  throw new Error(`${opts.name} (pid ${pid}) survived SIGKILL`);
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Whether something accepts TCP connections on host:port. */
export async function isPortOpen(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolveOpen(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls check() until it returns true. Fails early when the process died (with the log tail),
 * or after timeoutMs. Prints a progress line every 10 s so long waits are visible.
 */
export async function waitUntilReady(opts: {
  name: string;
  check: () => Promise<boolean>;
  timeoutMs: number;
  pid?: number;
  marker?: string;
  logFile?: string;
  intervalMs?: number;
}): Promise<void> {
  const started = Date.now();
  let nextNote = started + 10_000;
  for (;;) {
    if (await opts.check()) return;
    if (opts.pid !== undefined && opts.marker !== undefined && !(await isOurProcess(opts.pid, opts.marker))) {
      throw new Error(`${opts.name} exited during start-up${await logTailMessage(opts.logFile)}`);
    }
    const now = Date.now();
    if (now - started > opts.timeoutMs) {
      throw new Error(`${opts.name} not ready after ${opts.timeoutMs / 1000} s${await logTailMessage(opts.logFile)}`);
    }
    if (now >= nextNote) {
      progress(`${opts.name}: still waiting (${Math.round((now - started) / 1000)} s)`);
      nextNote = now + 10_000;
    }
    await sleep(opts.intervalMs ?? 200);
  }
}

async function logTailMessage(logFile: string | undefined): Promise<string> {
  if (logFile === undefined) return '';
  const tail = await tailFile(logFile, 15);
  return tail ? `; last lines of ${logFile}:\n${tail}` : `; see ${logFile}`;
}

export async function tailFile(path: string, lines: number): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Resident set size of a process in bytes, or undefined when it is gone. */
export async function rssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

export function formatMb(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${Math.round(bytes / (1024 * 1024))} MB`;
}

/**
 * After spawnDetached: writes the pid file, waits until `check` holds (stopping the process if
 * it does not), and returns the record kept in the state file.
 */
export async function awaitStarted(opts: {
  name: string;
  pid: number;
  marker: string;
  logFile: string;
  pidFile: string;
  startedAt: number;
  check: () => Promise<boolean>;
  timeoutMs: number;
  intervalMs?: number;
}): Promise<ServiceRecord> {
  await writeFile(opts.pidFile, `${opts.pid}\n`);
  try {
    await waitUntilReady(opts);
  } catch (err) {
    await stopProcess(opts.pid, opts.marker, { name: opts.name, termTimeoutMs: 10_000 });
    throw err;
  }
  return {
    pid: opts.pid,
    marker: opts.marker,
    startedAt: new Date(opts.startedAt).toISOString(),
    logFile: opts.logFile,
    startupMs: Date.now() - opts.startedAt,
  };
}

/** stopProcess for a recorded service, then removes its pid file. */
export async function stopRecorded(record: ServiceRecord, opts: { name: string; pidFile: string; termTimeoutMs: number }): Promise<boolean> {
  const stopped = await stopProcess(record.pid, record.marker, { name: opts.name, termTimeoutMs: opts.termTimeoutMs });
  await rm(opts.pidFile, { force: true });
  return stopped;
}
