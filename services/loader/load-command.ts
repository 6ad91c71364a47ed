// `tracklane load users|accounts FILE --tenant T`: the Data Loader. Sets user or account
// attributes from a CSV or JSONL file through the admin API, so it works against an embedded
// server and a fleet alike. Exit codes: 0 done (bad lines reported, the rest applied),
// 1 bad lines under --strict (nothing applied) or a server error, 2 usage (bad arguments,
// file, token, URL, tenant), 3 a request failed, 4 timed out waiting for the receipts.
import type { Writable } from 'node:stream';
import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError } from '../../libs/config/env.js';
import { createLoadClient, LoadApiError, type LoadClient } from './load-client.js';
import { formatOf, loadFileSize, openLoadFile } from './load-file.js';
import { createLoadProgress, silentProgress, type ProgressStream } from './load-progress.js';
import { formatBadLines, formatSummary, writeErrorsFile } from './load-report.js';
import type { LoadSubject } from './load-row.js';
import { runLoad } from './load-runner.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8080';

export interface LoadCommandOptions {
  subject: string;
  file: string;
  tenant: string;
  format?: string;
  url: string;
  dryRun: boolean;
  insertMissing: boolean;
  strict: boolean;
  wait: boolean;
  /** seconds */
  timeout: number;
  errorsFile?: string;
  /** draw no progress at all (tests) */
  quiet?: boolean;
}

export interface LoadIo {
  stdout: Writable;
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
  /** for tests: a client other than HTTP */
  client?: LoadClient;
}

const SUBJECTS: Record<string, LoadSubject> = { users: 'user', user: 'user', accounts: 'account', account: 'account' };

export function subjectOf(arg: string): LoadSubject {
  const subject = SUBJECTS[arg.trim().toLowerCase()];
  if (!subject) throw new ConfigError(`unknown subject "${arg}"; choose users or accounts`);
  return subject;
}

/** Runs one load and returns the exit code; throws ConfigError for usage errors (exit 2). */
export async function executeLoad(opts: LoadCommandOptions, io: LoadIo): Promise<number> {
  const subject = subjectOf(opts.subject);
  const format = formatOf(opts.file, opts.format);
  // NOTE: a tenant's `admin` API key (public listener) or the operator token (admin listener)
  const token = io.env['TRACKLANE_API_KEY']?.trim() || io.env['TRACKLANE_ADMIN_TOKEN']?.trim();
  if (!io.client && !token) {
    throw new ConfigError('neither TRACKLANE_API_KEY (a tenant key with the admin scope) nor TRACKLANE_ADMIN_TOKEN is set: the load command needs one');
  }
  if (!/^https?:\/\//i.test(opts.url)) throw new ConfigError(`--url must be an http(s) URL, got "${opts.url}"`);
  const totalBytes = await loadFileSize(opts.file);
  const client = io.client ?? createLoadClient({ url: opts.url, token: token ?? '' });
  const say = (line: string) => io.stdout.write(`${line}\n`);

  let outcome;
  try {
    outcome = await runLoad({
      client,
      tenantId: opts.tenant,
      subject,
      open: () => openLoadFile(opts.file, format, subject),
      totalBytes,
      insertMissing: opts.insertMissing,
      dryRun: opts.dryRun,
      strict: opts.strict,
      wait: opts.wait,
      timeoutMs: opts.timeout * 1000,
      progress: opts.quiet ? silentProgress : createLoadProgress(io.stderr),
    });
  } catch (err) {
    if (!(err instanceof LoadApiError)) throw err;
    // NOTE: a wrong URL, token or tenant is the caller's to fix (exit 2); anything else is the server's (exit 1).
    if (err.kind === 'unreachable' || err.kind === 'unauthorized' || err.kind === 'tenant_not_found') throw new ConfigError(err.message);
    io.stderr.write(`tracklane load: ${err.message}\n`);
    return 1;
  }

  const { bad } = outcome.pass;
  let errorsFile = opts.errorsFile;
  if (errorsFile) {
    // NOTE: the load has happened by now: a file we cannot write is worth a warning, not a different exit code.
    await writeErrorsFile(errorsFile, bad).catch((err: unknown) => {
      io.stderr.write(`tracklane load: cannot write ${errorsFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      errorsFile = undefined;
    });
  }
  for (const line of formatBadLines(bad, errorsFile)) say(line);
  for (const line of formatSummary(outcome, { file: opts.file, tenantId: opts.tenant, subject, insertMissing: opts.insertMissing })) say(line);
  return outcome.exitCode;
}

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

export function registerLoadCommand(program: Command): void {
  program
    .command('load')
    .description(
      'set user or account attributes from a CSV (header row: id column, then attribute names; an empty cell ' +
        'leaves the attribute unchanged) or JSONL file ({"id": "...", "email": "...", "phone": null}; null clears) ' +
        'through the admin API; credential from TRACKLANE_API_KEY (a tenant admin key) or TRACKLANE_ADMIN_TOKEN. Exit codes: 0 done, 1 bad lines with --strict, ' +
        '2 usage, 3 a request failed, 4 timed out',
    )
    .argument('<subject>', 'users | accounts')
    .argument('<file>', 'a .csv, .jsonl or .ndjson file')
    .requiredOption('--tenant <id>', 'the tenant whose users or accounts to change')
    .option('--format <format>', 'csv | jsonl (default: from the file extension)')
    .option('--url <url>', 'the admin API of an embedded server or fleet collector', DEFAULT_ADMIN_URL)
    .option('--dry-run', 'check every line with the server and report what would change; change nothing', false)
    .option('--insert-missing', 'create users/accounts that have no stored row (otherwise their lines change nothing)', false)
    .option('--strict', 'apply nothing unless every line is good (checked here and by a server dry run first)', false)
    .option('--no-wait', 'do not wait for the receipts to be verified')
    .option('--timeout <seconds>', 'how long to wait for the receipts', positiveSeconds, 600)
    .option('--errors-file <path>', 'write every bad line as JSONL {line, reason} (only the first 100 are printed)')
    .action(async (subject: string, file: string, o: Omit<LoadCommandOptions, 'subject' | 'file'>) => {
      process.exitCode = await executeLoad({ ...o, subject, file }, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    });
}
