// `npm run services:up [-- --keep-data] [-- --only kafka,redis]`: starts whichever service is
// not running and prints one NAME=value line per endpoint on stdout (progress goes to stderr),
// plus the ClickHouse gateway's fixed test login (CLICKHOUSE_USER, CLICKHOUSE_PASSWORD).
import { parseArgs } from 'node:util';
import { clickhousePassword, clickhouseUser } from './clickhouse-gateway.js';
import { endpointsToEnv, ensureServices, serviceNames, ServiceSetupError, type ServiceName } from './services.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'keep-data': { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((name) => !(serviceNames as readonly string[]).includes(name)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`services:up: unknown service ${unknown.join(', ')} (known: ${serviceNames.join(', ')})\n`);
    return 2;
  }
  const started = Date.now();
  try {
    const result = await ensureServices({
      ...(only ? { services: only as ServiceName[] } : {}),
      fresh: !values['keep-data'],
    });
    for (const [name, value] of Object.entries(endpointsToEnv(result))) process.stdout.write(`${name}=${value}\n`);
    // NOTE: the gateway refuses anonymous requests (as a real server would); its login is a dev constant, not a secret
    if (!only || only.includes('clickhouse')) process.stdout.write(`CLICKHOUSE_USER=${clickhouseUser}\nCLICKHOUSE_PASSWORD=${clickhousePassword}\n`);
    const what = result.started.length > 0 ? `started ${result.started.join(', ')}` : 'all already running';
    process.stderr.write(`[services] ${what} (${((Date.now() - started) / 1000).toFixed(1)} s); npm run services:down stops what was started\n`);
    return 0;
  } catch (err) {
    const message = err instanceof ServiceSetupError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`services:up failed: ${message}\n`);
    return 1;
  }
}

process.exitCode = await main();
