import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatBadLines, formatSummary, writeErrorsFile, type SummaryContext } from './load-report.js';
import type { LoadOutcome, PassResult } from './load-runner.js';

const bad = (n: number) => Array.from({ length: n }, (_, i) => ({ line: i + 2, reason: 'id is empty' }));

describe('formatBadLines', () => {
  it.each([
    [0, undefined, []],
    [2, undefined, ['line 2: id is empty', 'line 3: id is empty']],
    [4, undefined, ['line 2: id is empty', 'line 3: id is empty', '… and 2 more (--errors-file <path> writes all of them)']],
    [4, 'bad.jsonl', ['line 2: id is empty', 'line 3: id is empty', '… and 2 more (all of them are in bad.jsonl)']],
  ])('%i bad lines, errors file %s', (n, file, expected) => {
    expect(formatBadLines(bad(n), file, 2)).toEqual(expected);
  });
});

describe('writeErrorsFile', () => {
  it('writes one JSON object a line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracklane-report-'));
    try {
      await writeErrorsFile(join(dir, 'e.jsonl'), bad(2));
      expect(readFileSync(join(dir, 'e.jsonl'), 'utf8')).toBe('{"line":2,"reason":"id is empty"}\n{"line":3,"reason":"id is empty"}\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const pass = (over: Partial<PassResult> = {}): PassResult => ({
  dryRun: false,
  rowsRead: 100,
  sent: 98,
  accepted: 97,
  missing: 3,
  noop: 0,
  bad: bad(3),
  requestIds: ['r1', 'r2'],
  warnings: [],
  elapsedMs: 1_500,
  ...over,
});
const ctx: SummaryContext = { file: 'users.csv', tenantId: 'acme', subject: 'user', insertMissing: false };

describe('formatSummary', () => {
  it.each<[string, LoadOutcome, Partial<SummaryContext>, string[]]>([
    [
      'a load, verified',
      { pass: pass(), applied: true, strictFailed: false, exitCode: 0, receipts: { verified: 2, failed: [], pending: [], elapsedMs: 4_000 } },
      {},
      [
        'users.csv → tenant "acme" (users)',
        '  100 rows read: 97 accepted, 3 bad lines',
        '  94 stored users updated in 2 requests, sent in 1.5 s',
        '  3 ids with no stored user: left alone (--insert-missing creates them)',
        '  2/2 requests verified after 4.0 s more',
      ],
    ],
    [
      'a load with --insert-missing, one failed, one pending',
      {
        pass: pass({ noop: 2 }),
        applied: true,
        strictFailed: false,
        exitCode: 3,
        receipts: { verified: 0, failed: [{ requestId: 'r1', reason: 'boom' }], pending: ['r2'], elapsedMs: 600_000 },
      },
      { insertMissing: true, subject: 'account' },
      [
        'users.csv → tenant "acme" (accounts)',
        '  100 rows read: 97 accepted, 3 bad lines, 2 without any attribute to change',
        '  94 stored accounts updated in 2 requests, sent in 1.5 s',
        '  3 ids with no stored account: created',
        '  0/2 requests verified after 600.0 s more',
        '  request r1 failed: boom',
        '  timed out: 1 request not verified yet: r2',
      ],
    ],
    [
      'a load the server warned about (no compactor), timed out',
      {
        pass: pass({ missing: 0, bad: [], warnings: ['no compactor has been seen in the last 30 s'] }),
        applied: true,
        strictFailed: false,
        exitCode: 4,
        receipts: { verified: 0, failed: [], pending: ['r1', 'r2'], elapsedMs: 600_000 },
      },
      {},
      [
        'users.csv → tenant "acme" (users)',
        '  100 rows read: 97 accepted, 0 bad lines',
        '  97 stored users updated in 2 requests, sent in 1.5 s',
        '  server: no compactor has been seen in the last 30 s',
        '  0/2 requests verified after 600.0 s more',
        '  timed out: 2 requests not verified yet: r1, r2',
      ],
    ],
    [
      'a load without waiting',
      { pass: pass({ missing: 0, bad: [] }), applied: true, strictFailed: false, exitCode: 0 },
      {},
      [
        'users.csv → tenant "acme" (users)',
        '  100 rows read: 97 accepted, 0 bad lines',
        '  97 stored users updated in 2 requests, sent in 1.5 s',
        '  not waiting for the receipts; check them with GET /v1/admin/requests/<id>:',
        '    r1',
        '    r2',
      ],
    ],
    [
      'a dry run',
      { pass: pass({ dryRun: true, requestIds: [] }), applied: false, strictFailed: false, exitCode: 0 },
      {},
      [
        'users.csv → tenant "acme" (users)',
        '  100 rows read: 97 valid, 3 bad lines',
        '  dry run: nothing was changed; 94 stored users would be updated',
        '  3 ids with no stored user: would be left alone (--insert-missing creates them)',
        '  took 1.5 s',
      ],
    ],
    [
      'a --strict stop',
      { pass: pass({ dryRun: true, requestIds: [] }), applied: false, strictFailed: true, exitCode: 1 },
      {},
      ['users.csv → tenant "acme" (users)', '  100 rows read: 97 valid, 3 bad lines', '  --strict: nothing was applied (fix the bad lines and run again)', '  took 1.5 s'],
    ],
  ])('%s', (_what, outcome, over, expected) => {
    expect(formatSummary(outcome, { ...ctx, ...over })).toEqual(expected);
  });
});
