// `.services/state.json`: which services our scripts started (pid, log, start time), so
// services:down and the vitest teardown stop only those. Guarded by a lock directory because
// services:up, vitest's global setup and fleet tests (stopKafka/startKafka) may run at once.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { servicesDir } from './paths.js';

export const serviceNames = ['kafka', 'registry', 'redis', 'clickhouse'] as const;
export type ServiceName = (typeof serviceNames)[number];

const serviceRecordSchema = z.object({
  pid: z.number().int(),
  /** substring of /proc/<pid>/cmdline that identifies the process (pids are recycled) */
  marker: z.string(),
  startedAt: z.string(),
  logFile: z.string(),
  startupMs: z.number().optional(),
});
export type ServiceRecord = z.infer<typeof serviceRecordSchema>;

const stateSchema = z.object({
  version: z.literal(1),
  services: z.partialRecord(z.enum(serviceNames), serviceRecordSchema),
});
export type ServicesState = z.infer<typeof stateSchema>;

export const stateFile = join(servicesDir, 'state.json');
const lockDir = join(servicesDir, 'state.lock');

export async function readState(): Promise<ServicesState> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch {
    return { version: 1, services: {} };
  }
  const parsed = stateSchema.safeParse(JSON.parse(text));
  // NOTE: an unreadable state file only loses "who started what"; processes are re-detected by probing.
  return parsed.success ? parsed.data : { version: 1, services: {} };
}

async function writeState(state: ServicesState): Promise<void> {
  await mkdir(servicesDir, { recursive: true });
  const tmp = `${stateFile}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await rename(tmp, stateFile);
}

// NOTE: services start in parallel within one process, so read-modify-write of the file is
// serialised here; across processes the lock directory below does it.
let mutations: Promise<unknown> = Promise.resolve();

function mutateState(change: (state: ServicesState) => void): Promise<void> {
  const next = mutations.then(async () => {
    const state = await readState();
    change(state);
    if (Object.keys(state.services).length === 0) await rm(stateFile, { force: true });
    else await writeState(state);
  });
  mutations = next.catch(() => undefined);
  return next;
}

export function recordService(name: ServiceName, record: ServiceRecord): Promise<void> {
  return mutateState((state) => {
    state.services[name] = record;
  });
}

export function forgetService(name: ServiceName): Promise<void> {
  return mutateState((state) => {
    delete state.services[name];
  });
}

let lockDepth = 0;

/**
 * Runs fn while holding the cross-process lock. Reentrant within one process (ensureServices
 * calls startKafka). A lock whose owner pid is dead is taken over.
 */
export async function withStateLock<T>(fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  if (lockDepth > 0) {
    lockDepth += 1;
    try {
      return await fn();
    } finally {
      lockDepth -= 1;
    }
  }
  await mkdir(servicesDir, { recursive: true });
  const started = Date.now();
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'owner'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await lockIsStale()) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - started > timeoutMs) {
        throw new Error(`timed out waiting for ${lockDir} (another services:up or test run holds it)`);
      }
      await sleep(250);
    }
  }
  lockDepth = 1;
  try {
    return await fn();
  } finally {
    lockDepth = 0;
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function lockIsStale(): Promise<boolean> {
  let owner: number;
  try {
    owner = Number(await readFile(join(lockDir, 'owner'), 'utf8'));
  } catch {
    // TRICKY: the owner writes its pid just after mkdir; give it a moment before calling it stale.
    await sleep(500);
    try {
      owner = Number(await readFile(join(lockDir, 'owner'), 'utf8'));
    } catch {
      return true;
    }
  }
  if (!Number.isInteger(owner) || owner <= 0) return true;
  try {
    process.kill(owner, 0);
    return false;
  } catch {
    return true;
  }
}
