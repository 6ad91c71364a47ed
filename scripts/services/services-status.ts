// `tsx scripts/services/services-status.ts`: one line per service: address, whether it answers,
// and pid/RSS when our scripts started it.
import { formatMb } from './process-control.js';
import { servicesStatus } from './services.js';

for (const s of await servicesStatus()) {
  const owner = s.pid !== undefined ? `ours, pid ${s.pid}, RSS ${formatMb(s.rssBytes)}` : 'not started by us';
  process.stdout.write(`${s.name.padEnd(10)} ${s.state.padEnd(6)} ${s.address} (${owner})\n`);
}
