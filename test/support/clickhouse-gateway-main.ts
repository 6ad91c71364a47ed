// Entry point of the ClickHouse gateway process (`tsx test/support/clickhouse-gateway-main.ts`):
// the one process that owns the shared chDB data dir while fleet services talk HTTP to it.
// CLICKHOUSE_GATEWAY_USER / _PASSWORD: the one user it accepts (unset: `default`, no password);
// CLICKHOUSE_GATEWAY_TLS_CERT_FILE / _KEY_FILE: serve HTTPS with that certificate.
import { readFileSync } from 'node:fs';
import { createLogger } from '../../libs/core/logger.js';
import { startClickHouseGateway } from './clickhouse-gateway.js';

async function main(): Promise<void> {
  const logger = createLogger({ name: 'clickhouse-gateway', level: process.env.LOG_LEVEL ?? 'info' });
  const portText = process.env.CLICKHOUSE_GATEWAY_PORT ?? '8123';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`CLICKHOUSE_GATEWAY_PORT must be a port number, got ${JSON.stringify(portText)}`);
  }
  const user = process.env.CLICKHOUSE_GATEWAY_USER;
  const certFile = process.env.CLICKHOUSE_GATEWAY_TLS_CERT_FILE;
  const keyFile = process.env.CLICKHOUSE_GATEWAY_TLS_KEY_FILE;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error('CLICKHOUSE_GATEWAY_TLS_CERT_FILE and CLICKHOUSE_GATEWAY_TLS_KEY_FILE go together');
  }
  const gateway = await startClickHouseGateway({
    port,
    host: process.env.CLICKHOUSE_GATEWAY_HOST ?? '127.0.0.1',
    dataDir: process.env.CLICKHOUSE_GATEWAY_DATA_DIR ?? '.services/clickhouse/data',
    logger,
    ...(user ? { users: { [user]: process.env.CLICKHOUSE_GATEWAY_PASSWORD ?? '' } } : {}),
    ...(certFile && keyFile ? { tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) } } : {}),
  });
  // one line the starting script can wait for (its logger line carries the same url)
  logger.info({ url: gateway.url, pid: process.pid }, 'clickhouse gateway ready');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'clickhouse gateway stopping');
    // server first (drains in-flight statements), then the engine — close() does both in order
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'clickhouse gateway stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`clickhouse gateway failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
