// `npm run services:down`: stops the services that services:up (or a test run) started, and
// clears .services/state.json. Services it did not start (e.g. the machine's Redis) stay up.
import { stopServices } from './services.js';

try {
  const stopped = await stopServices();
  process.stderr.write(`[services] ${stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing of ours was running'}\n`);
} catch (err) {
  process.stderr.write(`services:down failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
