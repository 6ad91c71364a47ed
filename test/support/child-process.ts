// The one way the tests, the bench and the fault scripts run a Tracklane process: spawned with
// the caller's environment, its output kept, its exit observable, its /readyz polled until it
// answers (or the process exits first), stopped with SIGTERM and, past a grace period, SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually, GiveUp } from './poll.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  /** default: the repository root */
  cwd?: string;
  /** keep only the last this many characters of output (default: all of it) */
  outputTail?: number;
  /** pass the output through to this process's stdout and stderr instead of keeping it */
  inheritOutput?: boolean;
  /** its own process group: a signal goes to the whole group (npm, sh, tsx, node) */
  detached?: boolean;
}

export interface Child {
  pid: number;
  /** what it wrote to stdout and stderr so far (empty with inheritOutput) */
  output(): string;
  /** resolves when it has exited */
  exited: Promise<Exit>;
  /** null while it runs */
  exit(): Exit | null;
  /** sends `sig` to it (to its group when detached) while it runs */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `killAfterMs` if given; resolves with its exit */
  stop(killAfterMs?: number): Promise<Exit>;
}

export function spawnChild(command: string, args: readonly string[], opts: SpawnOptions): Child {
  const child: ChildProcess = spawn(command, [...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: opts.env,
    stdio: ['ignore', opts.inheritOutput ? 'inherit' : 'pipe', opts.inheritOutput ? 'inherit' : 'pipe'],
    ...(opts.detached ? { detached: true } : {}),
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command} ${args.join(' ')}`);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (opts.outputTail !== undefined && out.length > opts.outputTail) out = out.slice(-opts.outputTail);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const running = () => child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals) => {
    if (!running()) return;
    if (!opts.detached) {
      child.kill(sig);
      return;
    }
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone already
    }
  };
  return {
    pid,
    output: () => out,
    exited,
    exit: () => (running() ? null : { code: child.exitCode, signal: child.signalCode }),
    signal,
    async stop(killAfterMs) {
      signal('SIGTERM');
      const killer = killAfterMs === undefined ? undefined : setTimeout(() => signal('SIGKILL'), killAfterMs);
      const e = await exited;
      clearTimeout(killer);
      return e;
    },
  };
}

/** `node [...nodeArgs] --import tsx <script> [...args]`: a TypeScript entry point in one process. */
export function spawnTsx(script: string, args: readonly string[], opts: SpawnOptions & { nodeArgs?: readonly string[] }): Child {
  return spawnChild(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], opts);
}

/** "code 1", "signal SIGKILL" */
export function describeExit(e: Exit): string {
  return e.code !== null ? `code ${e.code}` : `signal ${e.signal}`;
}

/**
 * Polls `${url}/readyz` until it answers 2xx. Rejects at once if the process exits first, and after
 * `timeoutMs`; both messages name it and, unless `showOutput` is false, carry its output.
 */
export async function waitReady(
  child: Child,
  url: string,
  o: { name: string; timeoutMs: number; everyMs: number; fetchTimeoutMs?: number; showOutput?: boolean },
): Promise<void> {
  const output = () => (o.showOutput === false ? '' : `:\n${child.output()}`);
  try {
    await eventually(
      async () => {
        const e = child.exit();
        if (e) throw new GiveUp(`${o.name} exited (${describeExit(e)}) before it was ready${output()}`);
        const signal = o.fetchTimeoutMs === undefined ? undefined : AbortSignal.timeout(o.fetchTimeoutMs);
        return fetch(`${url}/readyz`, signal ? { signal } : {}).then(
          (r) => r.ok,
          () => false,
        );
      },
      o.timeoutMs,
      `${o.name} ready`,
      o.everyMs,
    );
  } catch (err) {
    if (err instanceof GiveUp) throw err;
    throw new Error(`${o.name} not ready after ${o.timeoutMs / 1000} s${output()}`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
