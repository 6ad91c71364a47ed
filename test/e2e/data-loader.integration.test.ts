// The Data Loader end to end: `tracklane load` (in-process, over HTTP) against a real embedded
// server started as `npm start`: a 100k-line CSV with bad lines is applied and verified, every
// bad line reported by its line; --strict and --dry-run change nothing; JSONL null clears.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toNumber } from '../../libs/clickhouse/client.js';
import { ConfigError } from '../../libs/config/env.js';
import { executeLoad, type LoadCommandOptions } from '../../services/loader/load-command.js';
import { startEmbeddedProcess, type EmbeddedProcess } from '../support/embedded-process.js';
import { eventually } from '../support/poll.js';
import { CaptureStream } from '../support/capture-stream.js';

let server: EmbeddedProcess;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tracklane-data-loader-'));
  server = await startEmbeddedProcess();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


async function load(file: string, tenant: string, over: Partial<LoadCommandOptions> = {}, token = server.adminToken) {
  const stdout = new CaptureStream();
  const stderr = new CaptureStream();
  const started = Date.now();
  const code = await executeLoad(
    { subject: 'users', file, tenant, url: server.url, dryRun: false, insertMissing: false, strict: false, wait: true, timeout: 300, ...over },
    { stdout, stderr, env: { TRACKLANE_ADMIN_TOKEN: token } },
  );
  return { code, out: stdout.text, err: stderr.text, ms: Date.now() - started };
}

/** A tenant whose users `ids` exist (identified with an old email, a last name and a plan). */
async function tenantWithUsers(tenant: string, ids: string[]): Promise<void> {
  const created = await server.admin<{ writeKey: string }>('PUT', `/v1/admin/tenants/${tenant}`);
  expect(created.status).toBe(201);
  const auth = `Basic ${Buffer.from(`${created.body.writeKey}:`).toString('base64')}`;
  for (let i = 0; i < ids.length; i += 100) {
    const batch = ids.slice(i, i + 100).map((id) => ({
      type: 'identify',
      messageId: `${tenant}-${id}`,
      userId: id,
      traits: { email: `old-${id}@example.org`, lastName: `Last-${id}`, plan: 'free' },
    }));
    const res = await fetch(`${server.url}/v1/batch`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ batch }) });
    expect(res.status).toBe(200);
  }
  await eventually(async () => (await userCount(tenant)) === ids.length, 60_000, `${ids.length} users of ${tenant}`);
}

async function userCount(tenant: string): Promise<number> {
  const [r] = await server.query<{ n: unknown }>(`SELECT count() AS n FROM users FINAL WHERE tenant_id = '${tenant}'`);
  return toNumber(r?.n);
}

interface UserRow {
  user_id: string;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  traits: Record<string, string>;
}

async function users(tenant: string, ids: string[]): Promise<Map<string, UserRow>> {
  const list = ids.map((id) => `'${id}'`).join(',');
  const rows = await server.query<UserRow>(`SELECT user_id, email, first_name, last_name, traits FROM users FINAL WHERE tenant_id = '${tenant}' AND user_id IN (${list})`);
  return new Map(rows.map((r) => [r.user_id, r]));
}

const uid = (i: number) => `u${String(i).padStart(6, '0')}`;
const ROWS = 100_000;
/** The ids identified before the load: updated in place; the others are created (--insert-missing). */
const EXISTING = Array.from({ length: 300 }, (_, i) => uid(i * 331));

/**
 * A 100k-row CSV (plus header) with a quoted two-line value early on, so every later record
 * starts one line below its row number, and bad lines at known lines.
 */
function bigCsv(): { path: string; bad: Map<number, string>; goodRows: number } {
  const lines: string[] = ['user_id,email,first_name,plan'];
  const bad = new Map<number, string>();
  let line = 1;
  let goodRows = 0;
  for (let i = 0; i < ROWS; i++) {
    line++;
    const id = uid(i);
    if (i === 10) {
      lines.push(`${id},new-${id}@example.com,"Two\nLines",pro`);
      line++; // the record takes two lines
      goodRows++;
    } else if (i === 1_000) {
      lines.push(`,new-nobody@example.com,Nobody,pro`);
      bad.set(line, 'id is empty');
    } else if (i === 20_000) {
      lines.push(`${id},new-${id}@example.com,Short`);
      bad.set(line, '3 fields, the header has 4');
    } else if (i === 50_000) {
      lines.push(`${id},new-${id}@example.com,${'x'.repeat(8_193)},pro`);
      bad.set(line, 'column "first_name": value longer than 8192 characters');
    } else if (i === 77_777) {
      lines.push(`${uid(5)},again@example.com,Again,pro`);
      bad.set(line, 'same id as line 7: one line per id');
    } else if (i === 99_998) {
      lines.push(`${id},new-${id}@example.com,Bad"quote,pro`);
      bad.set(line, 'malformed CSV: a quote inside an unquoted field (quote the field and double the quote)');
    } else {
      lines.push(`${id},new-${id}@example.com,First-${i},pro`);
      goodRows++;
    }
  }
  const path = join(dir, 'users-100k.csv');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return { path, bad, goodRows };
}

describe('tracklane load (embedded server)', () => {
  it('loads a 100k-line CSV: good lines applied and verified, bad lines reported by line, sent well under a minute', async () => {
    const tenant = 'dl-big';
    await tenantWithUsers(tenant, EXISTING);
    const { path, bad, goodRows } = bigCsv();

    const r = await load(path, tenant, { insertMissing: true });
    const sentMs = Number(/sent in ([\d.]+) s/.exec(r.out)?.[1] ?? NaN) * 1000;
    console.log(`[data-loader] 100k-row CSV: read, checked and sent in ${(sentMs / 1000).toFixed(1)} s; verified after ${(r.ms / 1000).toFixed(1)} s\n${r.out}`);
    expect(r.err).not.toContain('tracklane load:');
    expect(r.code).toBe(0);
    // NOTE: the loader's own work (parse, check, send); the receipts' wait is the compactor's
    // (old parts to age out between batches) and is bounded by this test's timeout.
    expect(sentMs).toBeLessThan(30_000);
    for (const [line, reason] of bad) expect(r.out).toContain(`line ${line}: ${reason}\n`);
    expect(r.out).toContain(`${ROWS} rows read: ${goodRows} accepted, ${bad.size} bad lines`);
    expect(r.out).toMatch(/(\d+)\/\1 requests verified/);
    expect(r.out).not.toMatch(/new-u\d+@example\.com|First-\d/);

    expect(await userCount(tenant)).toBe(goodRows);
    const sample = [uid(0), uid(10), uid(331), uid(42_000), uid(99_999), uid(1_000), uid(20_000), uid(50_000), uid(99_998)];
    const got = await users(tenant, sample);
    // an identified user: the loaded attributes replaced, the others kept
    expect(got.get(uid(0))).toMatchObject({ email: 'new-u000000@example.com', first_name: 'First-0', last_name: 'Last-u000000' });
    expect(got.get(uid(331))).toMatchObject({ email: `new-${uid(331)}@example.com`, first_name: 'First-331', last_name: `Last-${uid(331)}` });
    expect(got.get(uid(331))?.traits['plan']).toBe('"pro"');
    // created by --insert-missing
    expect(got.get(uid(10))).toMatchObject({ email: `new-${uid(10)}@example.com`, first_name: 'Two\nLines' });
    expect(got.get(uid(42_000))).toMatchObject({ email: `new-${uid(42_000)}@example.com`, first_name: 'First-42000' });
    expect(got.get(uid(99_999))).toMatchObject({ first_name: 'First-99999' });
    // the bad lines changed nothing; the repeated id kept its first line's values
    for (const i of [1_000, 20_000, 50_000, 99_998]) expect(got.has(uid(i))).toBe(false);
    expect((await users(tenant, [uid(5)])).get(uid(5))).toMatchObject({ email: `new-${uid(5)}@example.com` });
  }, 240_000);

  it('--strict: reports the same bad lines, exits 1 and changes nothing', async () => {
    const tenant = 'dl-strict';
    const existing = EXISTING.slice(0, 20);
    await tenantWithUsers(tenant, existing);
    const { path, bad } = bigCsv();

    const r = await load(path, tenant, { insertMissing: true, strict: true });
    expect(r.code).toBe(1);
    for (const [line, reason] of bad) expect(r.out).toContain(`line ${line}: ${reason}\n`);
    expect(r.out).toContain('--strict: nothing was applied');
    expect(await userCount(tenant)).toBe(existing.length);
    const got = await users(tenant, existing);
    for (const id of existing) expect(got.get(id)).toMatchObject({ email: `old-${id}@example.org`, first_name: null });
  }, 240_000);

  it('--dry-run says what would change and changes nothing', async () => {
    const tenant = 'dl-dry';
    await tenantWithUsers(tenant, ['a1', 'a2']);
    const path = join(dir, 'dry.csv');
    writeFileSync(path, 'id,email\na1,new-a1@example.com\na2,new-a2@example.com\nnobody,new@example.com\n,x@example.com\n');

    const r = await load(path, tenant, { dryRun: true });
    expect(r.code).toBe(0);
    expect(r.out).toContain('line 5: id is empty\n');
    expect(r.out).toContain('4 rows read: 3 valid, 1 bad line');
    expect(r.out).toContain('dry run: nothing was changed; 2 stored users would be updated');
    expect(r.out).toContain('1 id with no stored user: would be left alone (--insert-missing creates them)');
    expect(await userCount(tenant)).toBe(2);
    expect((await users(tenant, ['a1'])).get('a1')).toMatchObject({ email: 'old-a1@example.org' });
  }, 120_000);

  it('JSONL: null clears an attribute; an id with no stored user is left alone without --insert-missing', async () => {
    const tenant = 'dl-jsonl';
    await tenantWithUsers(tenant, ['j1']);
    const path = join(dir, 'users.jsonl');
    writeFileSync(path, '{"userId":"j1","email":"new-j1@example.com","lastName":null}\n{"id":"ghost","email":"g@example.com"}\n{"id":"j1","age":42}\n');

    const r = await load(path, tenant);
    expect(r.code).toBe(0);
    expect(r.out).toContain('line 3: key "age": value must be a string or null, got a number\n');
    expect(r.out).toContain('1 id with no stored user: left alone');
    expect((await users(tenant, ['j1'])).get('j1')).toMatchObject({ email: 'new-j1@example.com', last_name: null });
    expect(await userCount(tenant)).toBe(1);
  }, 120_000);

  it.each([
    ['an unknown tenant', 'nobody-here', undefined, 'tenant "nobody-here" does not exist'],
    ['a wrong token', 'dl-dry', 'wrong-token', 'refused the token (401): check TRACKLANE_ADMIN_TOKEN'],
  ])('refuses %s with a readable error', async (_what, tenant, token, message) => {
    const path = join(dir, 'small.csv');
    writeFileSync(path, 'id,email\na1,x@example.com\n');
    const err = await load(path, tenant, {}, token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
  });
});
