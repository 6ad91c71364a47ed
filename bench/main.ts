// `npm run bench`: every benchmark of the pipeline, one after the other on this machine, each
// against its baseline or target taken in the same run. Prints the method and the numbers
// and writes them to .bench/results.json. Targets that are missed are reported, not hidden.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { BenchReport } from './bench-types.js';
import { benchAnonymize } from './anonymize-bench.js';
import { benchCompactor } from './compactor-bench.js';
import { benchControls } from './controls-bench.js';
import { benchEndToEnd } from './e2e-bench.js';
import { benchEnrich } from './enrich-bench.js';
import { benchFleet } from './fleet-bench.js';
import { benchKafkaTls } from './kafka-tls-bench.js';
import { benchPeers } from './peers-bench.js';
import { benchPipeline } from './pipeline-bench.js';
import { benchScrub } from './scrub-bench.js';
import { benchSink } from './sink-bench.js';

const only = process.argv.slice(2);
const suites: [string, () => Promise<BenchReport>][] = [
  ['enrich', benchEnrich],
  ['anonymize', benchAnonymize],
  ['pipeline', benchPipeline],
  ['sink', benchSink],
  ['e2e', () => benchEndToEnd()],
  ['fleet', benchFleet],
  ['peers', () => benchPeers()],
  ['compactor', () => benchCompactor()],
  ['scrub', benchScrub],
  ['kafka-tls', () => benchKafkaTls()],
  ['controls', benchControls],
];

const out = (s = '') => process.stdout.write(`${s}\n`);
out(`tracklane benchmarks — node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB`);
const reports: BenchReport[] = [];
for (const [name, run] of suites) {
  if (only.length > 0 && !only.includes(name)) continue;
  out(`\n▶ ${name}`);
  const report = await run();
  reports.push(report);
  out(`  ${report.name}`);
  out(`  method: ${report.method}`);
  for (const [k, v] of Object.entries(report.metrics)) out(`  ${k.padEnd(24)} ${v.toLocaleString('en')}`);
  out(`  target: ${report.target} → ${report.passed ? 'MET' : 'MISSED'}`);
}
out('\nsummary');
for (const r of reports) out(`  ${r.passed ? 'MET   ' : 'MISSED'} ${r.name}: ${r.target}`);
mkdirSync('.bench', { recursive: true });
writeFileSync('.bench/results.json', `${JSON.stringify({ at: new Date().toISOString(), reports }, null, 2)}\n`);
out('\nwritten to .bench/results.json');
