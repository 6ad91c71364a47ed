// Scenario 8 of `npm run faults`, embedded-crash: `tracklane start` (one process, chDB
// under a data dir) is kill -9'd as a whole process group under load and started again on the
// same data dir and port, with a retroactive overwrite in flight at each kill. It proves the
// embedded durability point (a 2xx waits for the flush holding its events: DESIGN.md §6) and the
// overwrite journal (services/embedded/overwrite-queue.ts): every acknowledged event is stored
// once through FINAL, and every overwrite resumes after the crash and ends `verified`, with no
// old value left in any table.
// NOTE: needs none of the shared services (Kafka, Redis, the ClickHouse gateway): the child runs
// on embedded defaults, their endpoints stripped from its environment.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnChild, waitReady } from '../../../test/support/child-process.js';
import { eventually } from '../../../test/support/poll.js';
import { repoRoot } from '../../services/paths.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from '../scenario.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Profile {
  cycles: number;
  /** load between a (re)start being ready and the next kill */
  upMs: number;
  /** how long the maximum rate is measured at the start */
  measureMs: number;
  /** load after the last restart, before the load stops */
  tailMs: number;
  /** after the load stopped: bounds for stored ≥ acknowledged and for the receipts */
  settleMs: number;
  verifyMs: number;
}

// NOTE: the short profile fits the CI budget (≤ ~90 s on 2 cores): a start after a crash took
// ~2 s here, but the README warns the first compaction round after a start may wait ~35 s for
// the engine's part-cleanup thread: the receipts' bound leaves room for that.
const PROFILES: Record<'short' | 'full', Profile> = {
  short: { cycles: 3, upMs: 8_000, measureMs: 2_000, tailMs: 2_000, settleMs: 30_000, verifyMs: 45_000 },
  full: { cycles: 5, upMs: 20_000, measureMs: 4_000, tailMs: 5_000, settleMs: 120_000, verifyMs: 150_000 },
};

/** default load: this fraction of the measured maximum (the compactor shares the 2 cores) */
const DEFAULT_LOAD_FRACTION = 0.25;

/**
 * How long after the PATCH's 202 the kill comes, cycle after cycle — meant to hit the request
 * in different states: in the round's registry and mutation steps (~0.6 s), only in the journal
 * (the queue gathers for 300 ms), `applied` while the round waits for superseded parts or
 * verifies (1.5 s), and so on. Timing-dependent (on this machine a round took ~1–2 s): what the
 * receipt said just before each kill is reported.
 */
const KILL_LEADS_MS = [600, 250, 1_500, 400, 3_000];

export const embeddedCrash: Scenario = {
  name: 'embedded-crash',
  summary: 'tracklane start kill -9\'d under load with an overwrite in flight, restarted on the same data dir: nothing acknowledged lost, the overwrite journal resumes to verified',
  run: runEmbeddedCrash,
};

/** The schedule as printed before the run (pure: also what the test checks). */
export function scheduleOf(p: Profile, rate: number | 'measured', fraction = DEFAULT_LOAD_FRACTION): string {
  const leads = Array.from({ length: p.cycles }, (_, i) => KILL_LEADS_MS[i % KILL_LEADS_MS.length] ?? 0);
  return [
    `embedded-crash: ${p.cycles} crash cycles of the embedded process (npm start, one data dir, one port)`,
    `  start; measure the maximum rate for ${p.measureMs / 1000} s; identify ${p.cycles} users with old traits`,
    `  load at ${rate === 'measured' ? `${fraction} × the measured maximum` : `${rate} events/s`} throughout`,
    ...leads.map(
      (lead, i) =>
        `  cycle ${i + 1}: ${(p.upMs / 1000).toFixed(0)} s of load; a PATCH of user ${i + 1}'s email and first name, kill -9 of the process group ${lead} ms after its 202; restart, wait for /readyz`,
    ),
    `  ${p.tailMs / 1000} s more load; stop; wait ≤ ${p.settleMs / 1000} s for stored ≥ acknowledged and ≤ ${p.verifyMs / 1000} s for every receipt to be verified`,
    '  check through events FINAL: lost, stored twice; physical copies; old values in every table',
  ].join('\n');
}

export interface LedgerDiff {
  lost: string[];
  duplicated: string[];
  /** stored, never answered 2xx (in flight at a kill): allowed */
  storedNotAcknowledged: number;
}

/** The ledger against what is stored through FINAL (id → rows). */
export function diffLedger(acknowledged: readonly string[], stored: ReadonlyMap<string, number>): LedgerDiff {
  const acked = new Set(acknowledged);
  return {
    lost: [...acked].filter((id) => !stored.has(id)),
    duplicated: [...stored].filter(([, n]) => n > 1).map(([id]) => id),
    storedNotAcknowledged: [...stored.keys()].filter((id) => !acked.has(id)).length,
  };
}

interface Subject {
  userId: string;
  /** the old values (synthetic, never logged): searched for in every table at the end */
  needles: string[];
  newEmail: string;
  requestId?: string;
  leadMs?: number;
  statusAtKill?: string;
  /** mutations not done when the kill came (-1: unknown) */
  mutationsAtKill?: number;
  status?: string;
  reason?: string | null;
  verifiedAt?: number;
}

async function runEmbeddedCrash(opts: ScenarioOptions, log: (line: string) => void): Promise<ScenarioResult> {
  const started = Date.now();
  const base = PROFILES[opts.short ? 'short' : 'full'];
  const p: Profile = { ...base, cycles: opts.cycles ?? base.cycles };
  const schedule = scheduleOf(p, opts.rate ?? 'measured', opts.loadFraction);
  log(schedule);

  const dataDir = await mkdtemp(join(tmpdir(), 'tracklane-faults-embedded-'));
  const port = await freePort();
  const adminToken = randomBytes(18).toString('base64url');
  const env = childEnv({
    PORT: String(port),
    HOST: '127.0.0.1',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_ADMIN_TOKEN: adminToken,
    // NOTE: the same master key on every start: a new one would be a different deployment
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
    LOG_LEVEL: 'warn',
  });
  const run: Run = { api: adminApi(`http://127.0.0.1:${port}`, adminToken), env, lives: [], tag: randomBytes(4).toString('hex'), figures: {}, failures: [] };
  let load: Load | undefined;
  try {
    await startLife(run);
    const tenantId = `crash-${run.tag}`;
    const created = await run.api.call<{ writeKey?: string }>('PUT', `/v1/admin/tenants/${tenantId}`);
    if (created.status !== 201 || !created.body.writeKey) throw new Error(`tenant not created (${created.status})`);
    const writeKey = created.body.writeKey;

    // acknowledged outside the steady load, checked all the same
    const extra: string[] = [];
    const measured = await measureMax(run.api.url, writeKey, `ec-m-${run.tag}-`, p.measureMs, extra);
    const rate = opts.rate ?? Math.max(50, Math.round(measured * (opts.loadFraction ?? DEFAULT_LOAD_FRACTION)));
    const subjects = await identifySubjects(run.api.url, writeKey, run.tag, p.cycles, extra);
    // NOTE: a control: the search that must find no old value at the end does find them now
    const seen = await tablesHolding(run.api, subjects.flatMap((s) => s.needles));
    // NOTE: an identify's traits are in identify_snapshots (migration 0010), its user's in users
    if (!seen.has('identify_snapshots') || !seen.has('users')) throw new Error(`the old-value search does not see the identifies (found in: ${[...seen.keys()].join(', ') || 'nothing'})`);
    log(`  measured ${Math.round(measured)} events/s; load at ${rate} events/s; ${subjects.length} users identified`);
    Object.assign(run.figures, { cycles: p.cycles, measuredMaxEventsPerSec: Math.round(measured), rate });

    load = startLoad(run.api.url, writeKey, `ec-l-${run.tag}-`, rate);
    const restartMs = await crashCycles(run, p, tenantId, subjects, () => extra.length + (load?.acknowledged.length ?? 0), log);
    const lastReady = Date.now();
    await sleep(p.tailMs);
    assertAlive(run);
    await load.stop();
    Object.assign(run.figures, { crashes: restartMs.length, restartMs, refused: Object.fromEntries(load.refused) });
    await waitForReceipts(run.api, subjects, p.verifyMs);
    run.figures['receiptsVerifiedAfterLastRestartMs'] = subjects.every((s) => s.status === 'verified') ? Math.max(0, ...subjects.map((s) => (s.verifiedAt ?? lastReady) - lastReady)) : null;
    await checkStore(run, p, tenantId, [...extra, ...load.acknowledged], subjects);
  } catch (err) {
    run.failures.push(`scenario aborted: ${(err as Error).message}`);
  } finally {
    await load?.stop().catch(() => undefined);
    for (const life of run.lives) await life.kill().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }

  const passed = run.failures.length === 0;
  return {
    scenario: 'embedded-crash',
    passed,
    schedule,
    durationMs: Date.now() - started,
    figures: run.figures,
    failures: run.failures,
    ...(passed ? {} : { diagnostics: run.lives.map((l) => l.describe()).join('\n') }),
  };
}

/** What a run shares between its steps. */
interface Run {
  api: AdminApi;
  env: Record<string, string | undefined>;
  /** every start of the process, the running one last */
  lives: Life[];
  /** makes this run's ids and old values unique */
  tag: string;
  figures: Record<string, unknown>;
  failures: string[];
}

/** Each cycle: load, a PATCH, kill -9 of the process group shortly after, restart. Kill → ready per cycle. */
async function crashCycles(run: Run, p: Profile, tenantId: string, subjects: Subject[], acknowledged: () => number, log: (line: string) => void): Promise<number[]> {
  const restartMs: number[] = [];
  for (let cycle = 1; cycle <= p.cycles; cycle++) {
    const subject = subjects[cycle - 1];
    const lead = KILL_LEADS_MS[(cycle - 1) % KILL_LEADS_MS.length] ?? 0;
    await sleep(Math.max(0, p.upMs - lead));
    assertAlive(run);
    if (subject) await requestOverwrite(run.api, tenantId, subject, lead);
    await sleep(lead);
    if (subject?.requestId) {
      // what the kill is about to interrupt: the receipt's state and the engine's unfinished mutations
      const [r, mutations] = await Promise.all([receipt(run.api, subject.requestId).catch(() => undefined), unfinishedMutations(run.api).catch(() => -1)]);
      subject.statusAtKill = r?.status ?? 'unknown';
      subject.mutationsAtKill = mutations;
    }
    const killedAt = Date.now();
    await run.lives[run.lives.length - 1]?.kill();
    await startLife(run);
    restartMs.push(Date.now() - killedAt);
    log(
      `  cycle ${cycle}: acknowledged ${acknowledged()}, receipt at the kill ${subject?.statusAtKill ?? '-'} with ${subject?.mutationsAtKill ?? '-'} unfinished mutations (${lead} ms after its 202), kill → ready ${((Date.now() - killedAt) / 1000).toFixed(1)} s`,
    );
  }
  return restartMs;
}

/** Polls every receipt until verified or failed, for at most `ms` in all. */
async function waitForReceipts(api: AdminApi, subjects: Subject[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (const s of subjects) {
    const requestId = s.requestId;
    if (!requestId) continue;
    const receiptFinal = async () => {
      const r = await receipt(api, requestId).catch(() => undefined);
      Object.assign(s, { status: r?.status ?? 'unknown', reason: r?.reason ?? null, verifiedAt: r?.verifiedAt ?? undefined });
      return s.status === 'verified' || s.status === 'failed';
    };
    await eventually(receiptFinal, Math.max(0, deadline - Date.now()), `receipt ${requestId}`, 500).catch(() => undefined);
  }
}

/** The store against the ledger and the overwrites: figures, and a failure for each broken promise. */
async function checkStore(run: Run, p: Profile, tenantId: string, acknowledged: string[], subjects: Subject[]): Promise<void> {
  // NOTE: in embedded mode a 2xx already waited for its flush: stored < acknowledged is a loss
  // the wait only rules out being early about
  await eventually(async () => (await storedCount(run.api, tenantId)) >= acknowledged.length, p.settleMs, 'stored ≥ acknowledged', 1_000).catch(() => undefined);

  const stored = await storedIds(run.api, tenantId);
  const diff = diffLedger(acknowledged, stored);
  const physical = await run.api.count(`SELECT count() AS n FROM events WHERE tenant_id = ${sqlString(tenantId)}`);
  const oldValues = await tablesHolding(run.api, subjects.flatMap((s) => s.needles));
  const newValueMissing = await subjectsWithoutNewEmail(run.api, tenantId, subjects);
  Object.assign(run.figures, {
    acknowledged: acknowledged.length,
    stored: stored.size,
    lost: diff.lost.length,
    duplicatedThroughFinal: diff.duplicated.length,
    physicalCopies: physical - stored.size,
    storedNotAcknowledged: diff.storedNotAcknowledged,
    overwrites: subjects.map((s, i) => ({ cycle: i + 1, leadMs: s.leadMs, statusAtKill: s.statusAtKill, mutationsAtKill: s.mutationsAtKill, status: s.status, ...(s.reason ? { reason: s.reason } : {}) })),
    overwriteStatus: subjects.every((s) => s.status === 'verified') ? 'verified' : subjects.map((s) => s.status ?? 'not requested').join(', '),
    oldValuesLeft: [...oldValues.values()].reduce((a, b) => a + b, 0),
    ...(oldValues.size > 0 ? { oldValuesLeftIn: Object.fromEntries(oldValues) } : {}),
    // a mutation a kill interrupted and nothing finished (reported; the verified receipts decide)
    unfinishedMutations: await unfinishedMutations(run.api),
  });

  const f = run.failures;
  if (diff.lost.length > 0) f.push(`lost ${diff.lost.length} acknowledged events (first 20): ${diff.lost.slice(0, 20).join(', ')}`);
  if (diff.duplicated.length > 0) f.push(`${diff.duplicated.length} events stored more than once through FINAL (first 20): ${diff.duplicated.slice(0, 20).join(', ')}`);
  for (const s of subjects) {
    if (s.status !== 'verified') f.push(`overwrite ${s.requestId ?? '(not accepted)'} of ${s.userId} ended ${s.status ?? 'unknown'}${s.reason ? ` (${s.reason})` : ''}, not verified`);
  }
  if (oldValues.size > 0) f.push(`old values left in: ${[...oldValues].map(([t, n]) => `${t} (${n} rows)`).join(', ')}`);
  if (newValueMissing.length > 0) f.push(`users FINAL lacks the new email of: ${newValueMissing.join(', ')}`);
}

const unfinishedMutations = (api: AdminApi) => api.count('SELECT count() AS n FROM system.mutations WHERE is_done = 0');

/** The caller's environment without the shared services' endpoints, plus `set`. */
function childEnv(set: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  // NOTE: by prefix: the harness's main sets CLICKHOUSE_USER/_PASSWORD for the fleet scenarios
  for (const k of Object.keys(env)) if (/^(CLICKHOUSE_|KAFKA_|SCHEMA_REGISTRY_|REDIS_)/.test(k)) delete env[k];
  return { ...env, ...set };
}

interface Life {
  /** SIGKILL to the whole process group (npm, sh, tsx, node); resolves once none of it runs */
  kill(): Promise<void>;
  /** the exit code when it exited without being killed */
  exitedByItself(): number | null | undefined;
  describe(): string;
}

const OUTPUT_TAIL = 16_000;

/**
 * One more start of the embedded process on the run's data dir and port, ready when it
 * resolves. It joins `run.lives` first, so a start that never gets ready is in the diagnostics.
 */
async function startLife(run: Run): Promise<void> {
  const n = run.lives.length + 1;
  const child = spawnChild('npm', ['start', '--silent'], { cwd: repoRoot, env: run.env, detached: true, outputTail: OUTPUT_TAIL });
  let killing = false;
  let gone = false;
  const exit = () => child.exit()?.code;
  // NOTE: the child is detached: if the harness dies first, nothing else would ever stop it
  const orphanGuard = () => {
    if (gone) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  process.once('exit', orphanGuard);
  const groupGone = () => {
    gone = true;
    process.off('exit', orphanGuard);
  };
  run.lives.push({
    async kill() {
      // NOTE: never signal a group twice: once gone, its id may belong to someone else
      if (gone) return;
      killing = true;
      const pgid = child.pid;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        return groupGone();
      }
      // TRICKY: chDB must not be opened again while a killed member still holds the data dir
      await eventually(() => !groupRuns(pgid), 15_000, `process group ${pgid} to end after SIGKILL`, 50);
      groupGone();
    },
    exitedByItself: () => (killing ? undefined : exit()),
    describe: () => `--- start ${n} (pid ${child.pid}${killing ? ', killed' : exit() !== undefined ? `, exited ${exit()}` : ''}), last output:\n${child.output().trim() || '(none)'}`,
  });

  await waitReady(child, run.api.url, { name: `start ${n}`, timeoutMs: 90_000, everyMs: 100, fetchTimeoutMs: 2_000, showOutput: false });
}

/** Whether a member of the process group runs (zombies do not count: nothing may reap them here). */
function groupRuns(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    // no /proc: ask the kernel (a zombie member then counts as running, until reaped)
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // fields after "(comm)": state ppid pgrp …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}

function assertAlive(run: Run): void {
  const code = run.lives[run.lives.length - 1]?.exitedByItself();
  if (code !== undefined) throw new Error(`the embedded process exited by itself (${code}): a finding, not restarted`);
}

interface AdminApi {
  url: string;
  call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  query<T>(sql: string): Promise<T[]>;
  count(sql: string): Promise<number>;
}

function adminApi(url: string, token: string): AdminApi {
  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const query = async <T>(sql: string) => {
    const r = await call<{ rows?: T[]; message?: string }>('POST', '/v1/admin/query', { sql });
    if (r.status !== 200 || !r.body.rows) throw new Error(`query failed (${r.status}): ${r.body.message}`);
    return r.body.rows;
  };
  const count = async (sql: string) => Number((await query<{ n: unknown }>(sql))[0]?.n ?? 0);
  return { url, call, query, count };
}

const sqlString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** POST /v1/batch; -1 when there was no answer (the process is down). */
async function sendBatch(url: string, writeKey: string, batch: unknown[]): Promise<number> {
  try {
    const res = await fetch(`${url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
      body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return -1;
  }
}

interface Load {
  /** ids answered 2xx */
  readonly acknowledged: string[];
  /** requests answered otherwise, by status (-1: no answer, as while the process is down) */
  readonly refused: Map<number, number>;
  stop(): Promise<void>;
}

const LOAD_BATCH = 100;
const LOAD_SENDERS = 2;

/**
 * Batches of fresh track events at about `eventsPerSec` until stopped, never giving up.
 * NOTE: a ledger of its own rather than ../ledger.ts's: its ids stay plain (one per event) and it
 * talks to one fixed address, which is what a restart on the same port needs.
 */
function startLoad(url: string, writeKey: string, idPrefix: string, eventsPerSec: number): Load {
  const acknowledged: string[] = [];
  const refused = new Map<number, number>();
  let n = 0;
  let running = true;
  // each sender waits for its answer (the flush), so two keep the rate when a flush is slow
  const periodMs = (1000 * LOAD_BATCH * LOAD_SENDERS) / eventsPerSec;
  const sender = async () => {
    let next = Date.now();
    while (running) {
      const ids = Array.from({ length: LOAD_BATCH }, () => `${idPrefix}${n++}`);
      const status = await sendBatch(url, writeKey, ids.map((id, i) => ({ type: 'track', event: 'Fault Load', messageId: id, userId: `user-${i % 24}` })));
      if (status >= 200 && status < 300) acknowledged.push(...ids);
      else refused.set(status, (refused.get(status) ?? 0) + 1);
      next += periodMs;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else next = Date.now();
    }
  };
  const senders = Array.from({ length: LOAD_SENDERS }, () => sender());
  return {
    acknowledged,
    refused,
    async stop() {
      running = false;
      await Promise.all(senders);
    },
  };
}

/** Batches of 100 from 4 senders for `ms`: the acknowledged events per second (ids into `acked`). */
async function measureMax(url: string, writeKey: string, prefix: string, ms: number, acked: string[]): Promise<number> {
  let n = 0;
  const before = acked.length;
  const t0 = Date.now();
  const sender = async () => {
    while (Date.now() - t0 < ms) {
      const ids = Array.from({ length: 100 }, () => `${prefix}${n++}`);
      const status = await sendBatch(url, writeKey, ids.map((id, i) => ({ type: 'track', event: 'Fault Max', messageId: id, userId: `max-${i % 24}` })));
      if (status >= 200 && status < 300) acked.push(...ids);
    }
  };
  await Promise.all([sender(), sender(), sender(), sender()]);
  return ((acked.length - before) * 1000) / (Date.now() - t0);
}

/** One user per cycle, identified with old traits (stored once this resolves: a 2xx waits for the flush). */
async function identifySubjects(url: string, writeKey: string, tag: string, n: number, acked: string[]): Promise<Subject[]> {
  const subjects: Subject[] = Array.from({ length: n }, (_, i) => ({
    userId: `crash-subject-${i + 1}`,
    needles: [`old-${tag}-${i + 1}@crash-old.invalid`, `Oldname${tag}x${i + 1}`],
    newEmail: `new-${tag}-${i + 1}@crash-new.invalid`,
  }));
  const batch = subjects.flatMap((s, i) => [
    { type: 'identify', messageId: `ec-i-${tag}-${i + 1}`, userId: s.userId, traits: { email: s.needles[0], firstName: s.needles[1], plan: 'pro' } },
    { type: 'track', messageId: `ec-t-${tag}-${i + 1}`, userId: s.userId, event: 'Report Exported' },
  ]);
  const status = await sendBatch(url, writeKey, batch);
  if (status !== 200) throw new Error(`identifies not accepted (${status})`);
  acked.push(...batch.map((e) => e.messageId));
  return subjects;
}

async function requestOverwrite(api: AdminApi, tenantId: string, s: Subject, leadMs: number): Promise<void> {
  const r = await api.call<{ requestId?: string }>('PATCH', `/v1/admin/tenants/${tenantId}/users/${s.userId}`, { set: { email: s.newEmail, firstName: 'Newname' } });
  if (r.status !== 202 || !r.body.requestId) throw new Error(`overwrite of ${s.userId} not accepted (${r.status})`);
  s.requestId = r.body.requestId;
  s.leadMs = leadMs;
}

async function receipt(api: AdminApi, requestId: string): Promise<{ status: string; reason: string | null; verifiedAt: number | null } | undefined> {
  const r = await api.call<{ status?: string; reason?: string | null; verifiedAt?: number | null }>('GET', `/v1/admin/requests/${requestId}`);
  return r.status === 200 && r.body.status ? { status: r.body.status, reason: r.body.reason ?? null, verifiedAt: r.body.verifiedAt ?? null } : undefined;
}

const storedCount = (api: AdminApi, tenantId: string) => api.count(`SELECT count() AS n FROM events FINAL WHERE tenant_id = ${sqlString(tenantId)}`);

/** event id → rows through FINAL, paged by key (an analyst query returns at most 10,000 rows). */
async function storedIds(api: AdminApi, tenantId: string): Promise<Map<string, number>> {
  const stored = new Map<string, number>();
  let after = '';
  for (;;) {
    const page = await api.query<{ id: string; n: unknown }>(
      `SELECT event_id AS id, count() AS n FROM events FINAL
       WHERE tenant_id = ${sqlString(tenantId)} AND event_id > ${sqlString(after)}
       GROUP BY event_id ORDER BY event_id LIMIT 5000`,
    );
    for (const r of page) stored.set(r.id, Number(r.n));
    const last = page[page.length - 1];
    if (!last || page.length < 5000) return stored;
    after = last.id;
  }
}

/**
 * table → rows (physical, not through FINAL) holding any of the needles in any String, Map or
 * Array column — one query per table. The old values must be gone from every copy.
 */
async function tablesHolding(api: AdminApi, needles: readonly string[]): Promise<Map<string, number>> {
  const columns = await api.query<{ table: string; name: string }>(
    `SELECT c.table AS table, c.name AS name FROM system.columns c
     JOIN system.tables t ON t.database = c.database AND t.name = c.table
     WHERE c.database = currentDatabase() AND t.engine NOT LIKE '%View' AND t.engine NOT IN ('Set', 'Join')
       AND (c.type LIKE '%String%' OR c.type LIKE 'Map%' OR c.type LIKE 'Array%')`,
  );
  const byTable = new Map<string, string[]>();
  for (const { table, name } of columns) byTable.set(table, [...(byTable.get(table) ?? []), name]);
  // NOTE: a guard like test/support/grep-tables.ts's: no events table means the search saw nothing
  if (!byTable.has('events') || !byTable.has('users')) throw new Error(`the old-value search found no events/users columns (${columns.length} columns)`);
  const hits = new Map<string, number>();
  for (const [table, names] of byTable) {
    const any = names.flatMap((c) => needles.map((v) => `positionCaseInsensitive(toString(\`${c}\`), ${sqlString(v)}) > 0`)).join(' OR ');
    const n = await api.count(`SELECT count() AS n FROM \`${table}\` WHERE ${any}`);
    if (n > 0) hits.set(table, n);
  }
  return hits;
}

/** users whose row through FINAL does not hold the new email (an overwrite verified yet not applied) */
async function subjectsWithoutNewEmail(api: AdminApi, tenantId: string, subjects: readonly Subject[]): Promise<string[]> {
  const rows = await api.query<{ user_id: string; email: string | null }>(
    `SELECT user_id, email FROM users FINAL WHERE tenant_id = ${sqlString(tenantId)} AND user_id LIKE 'crash-subject-%'`,
  );
  const email = new Map(rows.map((r) => [r.user_id, r.email]));
  return subjects.filter((s) => s.requestId && email.get(s.userId) !== s.newEmail).map((s) => s.userId);
}
