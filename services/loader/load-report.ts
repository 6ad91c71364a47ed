// What `tracklane load` prints when it is done: the bad lines (capped; all of them with
// --errors-file) and a summary of what was, or would be, changed. Never a value or an id.
import { writeFile } from 'node:fs/promises';
import type { BadLine, LoadSubject } from './load-row.js';
import type { LoadOutcome } from './load-runner.js';

export const MAX_PRINTED_BAD_LINES = 100;

export function formatBadLines(bad: readonly BadLine[], errorsFile: string | undefined, max = MAX_PRINTED_BAD_LINES): string[] {
  const out = bad.slice(0, max).map((b) => `line ${b.line}: ${b.reason}`);
  if (bad.length > max) {
    out.push(`… and ${bad.length - max} more${errorsFile ? ` (all of them are in ${errorsFile})` : ' (--errors-file <path> writes all of them)'}`);
  }
  return out;
}

/** One JSON object a line: {"line": 17, "reason": "..."}, in file order. */
export async function writeErrorsFile(path: string, bad: readonly BadLine[]): Promise<void> {
  await writeFile(path, bad.map((b) => `${JSON.stringify({ line: b.line, reason: b.reason })}\n`).join(''));
}

export interface SummaryContext {
  file: string;
  tenantId: string;
  subject: LoadSubject;
  insertMissing: boolean;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function formatSummary(outcome: LoadOutcome, ctx: SummaryContext): string[] {
  const { pass } = outcome;
  const noun = ctx.subject === 'user' ? 'user' : 'account';
  const out = [`${ctx.file} → tenant "${ctx.tenantId}" (${noun}s)`];
  out.push(
    `  ${plural(pass.rowsRead, 'row')} read: ${pass.accepted} ${pass.dryRun ? 'valid' : 'accepted'}, ${plural(pass.bad.length, 'bad line')}` +
      (pass.noop > 0 ? `, ${pass.noop} without any attribute to change` : ''),
  );
  if (outcome.strictFailed && !outcome.applied) {
    out.push(`  --strict: nothing was applied (fix the bad lines and run again)`);
    return [...out, `  took ${seconds(pass.elapsedMs)}`];
  }
  const existing = pass.accepted - pass.missing;
  if (pass.dryRun) {
    out.push(`  dry run: nothing was changed; ${plural(existing, `stored ${noun}`)} would be updated`);
    if (pass.missing > 0) {
      out.push(`  ${plural(pass.missing, 'id')} with no stored ${noun}: ${ctx.insertMissing ? 'would be created' : 'would be left alone (--insert-missing creates them)'}`);
    }
    return [...out, `  took ${seconds(pass.elapsedMs)}`];
  }
  out.push(`  ${plural(existing, `stored ${noun}`)} updated in ${plural(pass.requestIds.length, 'request')}, sent in ${seconds(pass.elapsedMs)}`);
  if (pass.missing > 0) {
    out.push(`  ${plural(pass.missing, 'id')} with no stored ${noun}: ${ctx.insertMissing ? 'created' : 'left alone (--insert-missing creates them)'}`);
  }
  if (outcome.strictFailed) out.push(`  --strict: lines were rejected while applying; the other rows were applied`);
  for (const w of pass.warnings) out.push(`  server: ${w}`);
  const r = outcome.receipts;
  if (r) {
    out.push(`  ${r.verified}/${pass.requestIds.length} requests verified after ${seconds(r.elapsedMs)} more`);
    for (const f of r.failed) out.push(`  request ${f.requestId} failed: ${f.reason}`);
    if (r.pending.length > 0) out.push(`  timed out: ${plural(r.pending.length, 'request')} not verified yet: ${r.pending.join(', ')}`);
  } else if (pass.requestIds.length > 0) {
    out.push(`  not waiting for the receipts; check them with GET /v1/admin/requests/<id>:`);
    for (const id of pass.requestIds) out.push(`    ${id}`);
  }
  return out;
}
