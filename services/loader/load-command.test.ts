import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../libs/config/env.js';
import { LoadApiError, type LoadChunk, type LoadClient, type LoadResponse } from './load-client.js';
import { executeLoad, registerLoadCommand, subjectOf, type LoadCommandOptions } from './load-command.js';
import { CaptureStream } from '../../test/support/capture-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'tracklane-load-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Accepts every row whose id is stored ("u…"), rejects rows that set "forbidden". */
function fakeClient(over: Partial<LoadClient> = {}): LoadClient & { chunks: LoadChunk[] } {
  const chunks: LoadChunk[] = [];
  return {
    chunks,
    checkTenant: async () => undefined,
    load: async (_t, chunk): Promise<LoadResponse> => {
      chunks.push(chunk);
      const rejected = chunk.rows.flatMap((r, index) => ('forbidden' in r.set ? [{ index, reason: 'set.forbidden: not allowed' }] : []));
      const accepted = chunk.rows.length - rejected.length;
      return { requestId: chunk.dryRun ? null : `00000000-0000-0000-0000-00000000000${chunks.length}`, accepted, rejected, missing: 0 };
    },
    receipt: async (requestId) => ({ requestId, status: 'verified' }),
    ...over,
  };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const base = (path: string, over: Partial<LoadCommandOptions> = {}): LoadCommandOptions => ({
  subject: 'users',
  file: path,
  tenant: 'acme',
  url: 'http://127.0.0.1:8080',
  dryRun: false,
  insertMissing: false,
  strict: false,
  wait: true,
  timeout: 5,
  quiet: true,
  ...over,
});

async function run(opts: LoadCommandOptions, client: LoadClient = fakeClient()) {
  const stdout = new CaptureStream();
  const stderr = new CaptureStream();
  const code = await executeLoad(opts, { stdout, stderr, env: {}, client });
  return { code, out: stdout.text, err: stderr.text };
}

const CSV = 'user_id,email,forbidden\nu1,secret-one@x.io,\n,secret-two@x.io,\nu3,secret-three@x.io,nope\nu4,secret-four@x.io,\n';

describe('executeLoad', () => {
  it('applies the good lines, lists the bad ones by line and exits 0', async () => {
    const client = fakeClient();
    const r = await run(base(file('a.csv', CSV)), client);
    expect(r.code).toBe(0);
    expect(r.out).toContain('line 3: id is empty\nline 4: rejected by the server: set.forbidden: not allowed\n');
    expect(r.out).toContain('4 rows read: 2 accepted, 2 bad lines');
    expect(r.out).toContain('1/1 requests verified');
    expect(client.chunks.map((c) => c.dryRun)).toEqual([false]);
    expect(`${r.out}${r.err}`).not.toMatch(/secret/);
  });

  it('--strict exits 1 and applies nothing', async () => {
    const client = fakeClient();
    const r = await run(base(file('b.csv', CSV), { strict: true }), client);
    expect(r.code).toBe(1);
    expect(r.out).toContain('--strict: nothing was applied');
    expect(client.chunks.every((c) => c.dryRun)).toBe(true);
  });

  it('writes every bad line to --errors-file', async () => {
    const errorsFile = join(dir, 'errors.jsonl');
    const r = await run(base(file('c.jsonl', '{"id":"u1","age":3}\n\n{"id":"u2","email":"a"}\nnot json\n'), { errorsFile }));
    expect(r.code).toBe(0);
    expect(readFileSync(errorsFile, 'utf8')).toBe(
      '{"line":1,"reason":"key \\"age\\": value must be a string or null, got a number"}\n{"line":4,"reason":"invalid JSON"}\n',
    );
  });

  it('warns when --errors-file cannot be written, and still reports', async () => {
    const stdout = new CaptureStream();
    const stderr = new CaptureStream();
    const path = file('w.csv', 'id,email\n,a\n');
    const code = await executeLoad(base(path, { errorsFile: join(dir, 'no-such-dir', 'e.jsonl') }), { stdout, stderr, env: {}, client: fakeClient() });
    expect(code).toBe(0);
    expect(stderr.text).toMatch(/cannot write .*e\.jsonl: ENOENT/);
    expect(stdout.text).toContain('line 2: id is empty');
  });

  it('exits 3 when a request fails and 4 when the receipts time out', async () => {
    const path = file('d.csv', 'id,email\nu1,a\n');
    expect((await run(base(path), fakeClient({ receipt: async (requestId) => ({ requestId, status: 'failed', reason: 'boom' }) }))).code).toBe(3);
    const slow = await run(base(path, { timeout: 0.05 }), fakeClient({ receipt: async (requestId) => ({ requestId, status: 'pending' }) }));
    expect(slow.code).toBe(4);
    expect(slow.out).toContain('timed out: 1 request not verified yet');
  });

  it('exits 1 on a server error, with its message', async () => {
    const client = fakeClient({
      load: async () => {
        throw new LoadApiError('server', 'the load request failed with HTTP 500');
      },
    });
    const r = await run(base(file('e.csv', 'id,email\nu1,a\n')), client);
    expect(r.code).toBe(1);
    expect(r.err).toBe('tracklane load: the load request failed with HTTP 500\n');
  });

  it.each([
    ['an unknown subject', { subject: 'people' }, 'unknown subject "people"'],
    ['an unknown extension', { file: 'users.txt' }, 'pass --format csv|jsonl'],
    ['a missing file', { file: 'nope.csv' }, 'file not found: nope.csv'],
    ['a bad URL', { url: 'localhost:8080' }, '--url must be an http(s) URL'],
  ])('refuses %s with a ConfigError', async (_what, over, message) => {
    const err = await run(base(file('f.csv', 'id,a\nu1,x\n'), over)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(message);
  });

  it.each([
    ['unreachable', 'cannot reach the admin API at http://127.0.0.1:1 (ECONNREFUSED)'],
    ['unauthorized', 'refused the token'],
    ['tenant_not_found', 'tenant "acme" does not exist'],
  ] as const)('turns %s into a ConfigError', async (kind, message) => {
    const client = fakeClient({
      checkTenant: async () => {
        throw new LoadApiError(kind, message);
      },
    });
    await expect(run(base(file('g.csv', 'id,a\nu1,x\n')), client)).rejects.toThrow(new ConfigError(message));
  });

  it('needs TRACKLANE_ADMIN_TOKEN when it talks HTTP', async () => {
    const opts = base(file('h.csv', 'id,a\nu1,x\n'));
    const io = { stdout: new CaptureStream(), stderr: new CaptureStream(), env: { TRACKLANE_ADMIN_TOKEN: ' ' } };
    await expect(executeLoad(opts, io)).rejects.toThrow('neither TRACKLANE_API_KEY');
  });
});

describe('subjectOf', () => {
  it.each([
    ['users', 'user'],
    ['Accounts', 'account'],
    ['user', 'user'],
  ])('%s → %s', (arg, dataSubject) => expect(subjectOf(arg)).toBe(dataSubject));
});

describe('registerLoadCommand', () => {
  const program = () => {
    const p = new Command('tracklane').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerLoadCommand(p);
    return p;
  };

  it('needs --tenant', async () => {
    await expect(program().parseAsync(['load', 'users', 'x.csv'], { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
  });

  it('refuses a timeout that is not a positive number', async () => {
    await expect(program().parseAsync(['load', 'users', 'x.csv', '--tenant', 'acme', '--timeout', '0'], { from: 'user' })).rejects.toThrow('above 0');
  });

  it('hands the arguments to the load', async () => {
    const missing = join(dir, 'missing.csv');
    const saved = process.env['TRACKLANE_ADMIN_TOKEN'];
    process.env['TRACKLANE_ADMIN_TOKEN'] = 'tok';
    try {
      await expect(program().parseAsync(['load', 'accounts', missing, '--tenant', 'acme', '--no-wait', '--strict'], { from: 'user' })).rejects.toThrow(`file not found: ${missing}`);
    } finally {
      if (saved === undefined) delete process.env['TRACKLANE_ADMIN_TOKEN'];
      else process.env['TRACKLANE_ADMIN_TOKEN'] = saved;
    }
  });
});
