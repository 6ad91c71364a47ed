// Migrations on a real engine (chDB): idempotent, recorded, and refusing edited history.
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MIGRATIONS_DIR, MigrationChecksumError, migrate } from '../../libs/clickhouse/migrate.js';
import { toNumber } from '../../libs/clickhouse/client.js';
import { queryRows, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse({ migrate: false });
const shipped = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
const scratch = mkdtempSync(join(tmpdir(), 'tracklane-migrations-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('migrate', () => {
  it('applies every migration once, then nothing', async () => {
    const first = await migrate(ch().client);
    expect(first).toEqual({ applied: shipped, skipped: [] });
    const second = await migrate(ch().client);
    expect(second).toEqual({ applied: [], skipped: shipped });

    const recorded = await queryRows<{ name: string; checksum: string }>(ch().client, 'SELECT name, checksum FROM tracklane_migrations FINAL ORDER BY name');
    expect(recorded.map((r) => r.name)).toEqual(shipped);
    expect(recorded.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);

    const tables = await queryRows<{ name: string; engine: string }>(
      ch().client,
      "SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name NOT LIKE '.%' ORDER BY name",
    );
    expect(Object.fromEntries(tables.map((t) => [t.name, t.engine]))).toMatchObject({
      events: 'ReplacingMergeTree',
      users: 'ReplacingMergeTree',
      accounts: 'ReplacingMergeTree',
      dead_letters: 'MergeTree',
      daily_active_users: 'View',
      sessions: 'View',
      top_pages: 'View',
      events_by_account: 'View',
      events_by_country: 'View',
    });
  });

  it('applies only a new migration added later', async () => {
    const dir = join(scratch, 'added');
    cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    const next = String(shipped.length + 1).padStart(4, '0');
    writeFileSync(join(dir, `${next}_scratch.sql`), "-- test only\nCREATE TABLE IF NOT EXISTS scratch_t (a String) ENGINE = MergeTree ORDER BY a;\nCREATE OR REPLACE VIEW scratch_v AS SELECT 'x;y' AS s;\n");
    const r = await migrate(ch().client, { dir });
    expect(r).toEqual({ applied: [`${next}_scratch.sql`], skipped: shipped });
    const [row] = await queryRows<{ s: string }>(ch().client, 'SELECT s FROM scratch_v');
    expect(row?.s).toBe('x;y');
  });

  it('refuses when an applied migration was edited, and applies nothing', async () => {
    const dir = join(scratch, 'edited');
    cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
    appendFileSync(join(dir, shipped[0] as string), '\n-- sneaky edit\n');
    writeFileSync(join(dir, '0099_never.sql'), 'CREATE TABLE IF NOT EXISTS never_t (a String) ENGINE = MergeTree ORDER BY a;\n');
    await expect(migrate(ch().client, { dir })).rejects.toThrow(MigrationChecksumError);
    await expect(migrate(ch().client, { dir })).rejects.toThrow(new RegExp(`${shipped[0]} was changed after it was applied`));
    const [row] = await queryRows<{ n: unknown }>(ch().client, "SELECT count() AS n FROM system.tables WHERE name = 'never_t'");
    expect(toNumber(row?.n)).toBe(0);
  });
});
