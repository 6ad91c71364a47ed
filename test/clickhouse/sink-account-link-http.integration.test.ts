// The user's account link over the ClickHouse HTTP interface (a private gateway on its own
// engine): 64-bit values come back as strings and the lookups run in HTTP sessions.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll } from 'vitest';
import { migrate } from '../../libs/clickhouse/migrate.js';
import { startClickHouseGateway, type ClickHouseGateway } from '../support/clickhouse-gateway.js';
import { describeAccountLink } from './sink-account-link-suite.js';

let dataDir = '';
let gateway: ClickHouseGateway | undefined;
let client: ClickHouseClient | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-sink-http-'));
  gateway = await startClickHouseGateway({ port: 0, dataDir });
  client = createClient({ url: gateway.url, request_timeout: 30_000, log: { level: ClickHouseLogLevel.OFF } });
  await migrate(client);
});

afterAll(async () => {
  await client?.close();
  await gateway?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describeAccountLink('the HTTP interface', () => {
  if (!client) throw new Error('gateway not started yet');
  return client;
});
