// The sink's chDB insert of pre-encoded rows (libs/sink/tuple-insert.ts) against the client's own
// insert of the same tuples: the same rows stored, and errors with the engine's code (the sink
// decides retries by it).
import { describe, expect, it } from 'vitest';
import { encodedInserter } from '../../libs/clickhouse/client.js';
import { EVENT_COLUMNS, insertEventTuples } from '../../libs/clickhouse/tables/events.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import { toEventTuple } from '../../libs/sink/event-rows.js';
import { encodeCompactRows, tupleInserts } from '../../libs/sink/tuple-insert.js';
import { cleanEvent } from '../support/clickhouse-fixtures.js';
import { queryRows, uniqueTenant, useTestClickHouse } from '../support/chdb.js';

const ch = useTestClickHouse();

describe('tuple inserts on chDB', () => {
  it('go through the engine’s raw insert on chDB', () => {
    expect(encodedInserter(ch().client)).not.toBeNull();
  });

  it('store exactly the rows the client’s own insert stores, awkward strings included', async () => {
    const tenant = uniqueTenant();
    const awkward = ['quote " and \\ backslash', 'line\nbreak\ttab', 'é 😀 \u0001', "single ' quote", '{"json":"in a string"}', ''];
    const events = awkward.map((s, i) =>
      cleanEvent({
        tenant_id: tenant,
        event_id: `aw-${i}`,
        name: s || null,
        user_agent: s,
        properties: { [s || 'k']: JSON.stringify(s), n: '1' },
        context: { ...cleanEvent().context, url: `https://x.io/?q=${s}`, title: s },
        element: { tag: 'a', id: null, classes: [s, 'c'], label: s, href: null },
      }),
    );
    const tuples = events.map(toEventTuple);
    const c = ch().client;
    await c.command({ query: 'CREATE TABLE IF NOT EXISTS events_tuple_a AS events' });
    await c.command({ query: 'CREATE TABLE IF NOT EXISTS events_tuple_b AS events' });
    await tupleInserts(c).events(tuples, { table: 'events_tuple_a' });
    await insertEventTuples(c, tuples, { table: 'events_tuple_b' });
    const read = (table: string) => queryRows(c, `SELECT ${EVENT_COLUMNS.join(', ')} FROM ${table} WHERE tenant_id = {t:String} ORDER BY event_id`, { t: tenant });
    const [a, b] = await Promise.all([read('events_tuple_a'), read('events_tuple_b')]);
    expect(a).toHaveLength(awkward.length);
    expect(a).toEqual(b);
  });

  it('encode rows as the client does: one JSON array per line', () => {
    expect(encodeCompactRows([['a', 1, null, { k: 'v' }], [['x'], 'b"']]).toString()).toBe('["a",1,null,{"k":"v"}]\n[["x"],"b\\""]\n');
  });

  it('fail with the engine’s error code, and lift the partition limit only when asked', async () => {
    const c = ch().client;
    const inserts = tupleInserts(c);
    const missing = await inserts.events([toEventTuple(cleanEvent())], { table: 'no_such_events' }).then(() => null, (e: unknown) => e);
    expect(safeErrorFields(missing).code).toBe('60');
    // 101 months in one insert: ClickHouse refuses it as a whole unless the limit is lifted
    const tenant = uniqueTenant();
    const months = Array.from({ length: 101 }, (_, m) => {
      const at = Date.UTC(2015, m, 15);
      return toEventTuple(cleanEvent({ tenant_id: tenant, event_id: `m-${m}`, occurred_at: at, sent_at: null, received_at: at }));
    });
    const refused = await inserts.events(months, { table: 'events' }).then(() => null, (e: unknown) => e);
    expect(safeErrorFields(refused).code).toBe('252');
    await inserts.events(months, { table: 'events', liftPartitionLimit: true });
    const [row] = await queryRows<{ n: number }>(c, 'SELECT count() AS n FROM events WHERE tenant_id = {t:String}', { t: tenant });
    expect(Number(row?.n)).toBe(101);
    // NOTE: a SETTINGS clause of that insert alone: the connection keeps the limit
    const again = await inserts.events(months, { table: 'events' }).then(() => null, (e: unknown) => e);
    expect(safeErrorFields(again).code).toBe('252');
  });
});
