// The translator's refusals against a real engine (chDB): a request whose target key never
// loads, whose version is shredded, or whose tenant switched anonymization off meanwhile fails
// with that reason (PII-free) and changes nothing; the lookup tables are left empty.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyUnavailableError, type KeyRing } from '../anonymize/key-ring.js';
import { toNumber } from '../clickhouse/client.js';
import { createLogger } from '../core/logger.js';
import { DEFAULT_FLAGS, type TenantFlags } from '../tenants/flags.js';
import { useTestClickHouse } from '../../test/support/chdb.js';
import { createHistoryTranslator } from './history-translation.js';
import { createTranslationReceipts, pendingTranslation } from './translation-receipts.js';

const ch = useTestClickHouse();
const unavailable = (reason: 'shredded' | 'missing'): KeyRing => ({
  pseudonym: (tenantId, version) => {
    throw new KeyUnavailableError(tenantId, version, reason);
  },
});
const anonymizing: TenantFlags = { ...DEFAULT_FLAGS, anonymizeIdentity: true, anonymizeSince: 1_000, keyVersion: 2 };

describe('history translation: refusals', () => {
  it.each([
    { name: 'the key never loads', keys: unavailable('missing'), flags: anonymizing, reason: /pseudonym key version 2 was not loaded within 300 ms/ },
    { name: 'the version is shredded', keys: unavailable('shredded'), flags: anonymizing, reason: /pseudonym key version 2 is shredded/ },
    { name: 'anonymization was switched off', keys: unavailable('missing'), flags: DEFAULT_FLAGS, reason: /anonymizeIdentity was switched off/ },
    { name: 'the tenant is gone', keys: unavailable('missing'), flags: undefined, reason: /no longer exists/ },
  ])('$name: failed at once, with the reason', async ({ keys, flags, reason }) => {
    const receipts = createTranslationReceipts(ch().client);
    const translator = createHistoryTranslator({ client: ch().client, keys, flags: () => flags, receipts, logger: createLogger({ level: 'silent' }), keyWaitMs: 300 });
    const requestId = randomUUID();
    const pending = pendingTranslation(requestId, 'acme', 1_000, Date.now());
    await receipts.writePending(pending);
    const done = await translator.run(pending);
    expect(done).toMatchObject({ status: 'failed', attempts: 1 });
    expect(done.reason).toMatch(reason);
    expect(await receipts.read(requestId)).toMatchObject({ status: 'failed', reason: done.reason });
    const receipt = await receipts.forRequest(requestId, () => null);
    expect(receipt).toMatchObject({ kind: 'pseudonymize-history', status: 'failed', tenantId: 'acme', verifiedAt: null, keyVersion: null });
    const held = await (await ch().client.query({ query: `SELECT sum(total_rows) AS n FROM system.tables WHERE database = 'default' AND name LIKE 'overwrite_translation_%'`, format: 'JSONEachRow' })).json<{ n: unknown }>();
    expect(toNumber(held[0]?.n)).toBe(0);
  });
});
