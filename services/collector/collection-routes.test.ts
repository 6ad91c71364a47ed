// The ingestion routes with collection controls: a dropped event is counted in the answer and by
// onDrop once the request is answered 2xx; a retry verdict answers 503 with nothing handed on and
// nothing counted; an event left without any id is never handed on.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { perEventControl, type CollectionControls, type DropReason } from '../../libs/collection/controls.js';
import { createMemoryTenantStore } from '../../libs/tenants/tenant-store.js';
import { ingestApp, type IngestApp } from '../../test/support/ingest-app.js';

let writeKey: string;
let drops: DropReason[];
let current: IngestApp | undefined;
const tenants = createMemoryTenantStore();

beforeEach(async () => {
  drops = [];
  writeKey = (await tenants.createTenant(`t${Date.now()}${Math.random().toString(36).slice(2, 6)}`)).writeKey ?? '';
});
afterEach(() => current?.app.close());

/** drops events named "drop", asks a retry for "retry" */
const judge = perEventControl('judge', (_t, e) => (e.event.name === 'drop' ? { drop: 'bot' } : e.event.name === 'retry' ? { retry: 'not now' } : e));

async function appWith(collection: Omit<CollectionControls, 'onDrop'>): Promise<IngestApp> {
  current = await ingestApp({ tenants, collection: { ...collection, onDrop: (_t, reason) => void drops.push(reason) } });
  return current;
}

describe('collection controls on the ingestion routes', () => {
  it('a drop: counted in the answer (without its reason) and by onDrop; its siblings handed on', async () => {
    const { batch, ingested } = await appWith({ controls: [judge] });
    const res = await batch(writeKey, [{ type: 'track', event: 'keep', userId: 'u' }, { type: 'track', event: 'drop', userId: 'u' }]);
    expect([res.statusCode, res.json()]).toEqual([200, { success: true, accepted: 1, dropped: 1 }]);
    expect(drops).toEqual(['bot']);
    expect(ingested.map((e) => e.name)).toEqual(['keep']);
  });

  it('a retry verdict: 503 + Retry-After, nothing handed on, the drops of that request not counted yet', async () => {
    const { batch, ingested } = await appWith({ controls: [judge] });
    const res = await batch(writeKey, [{ type: 'track', event: 'drop', userId: 'u' }, { type: 'track', event: 'retry', userId: 'u' }]);
    expect([res.statusCode, res.headers['retry-after']]).toEqual([503, '1']);
    expect([drops, ingested]).toEqual([[], []]);
  });

  it('an event naming no id: rejected by index without cookieless mode; with it but no id derived, never handed on', async () => {
    const plain = await appWith({ controls: [] });
    const rejected = await plain.batch(writeKey, [{ type: 'track', event: 'x', userId: 'u' }, { type: 'track', event: 'y' }]);
    expect(rejected.json()).toMatchObject({ accepted: 1, rejected: 1, errors: [{ index: 1, error: 'userId: either userId or anonymousId is required' }] });
    await plain.app.close();

    const cookieless = await appWith({ controls: [], derivesAnonymousIds: true });
    expect((await cookieless.batch(writeKey, [{ type: 'track', event: 'y' }])).statusCode).toBe(503);
    expect(cookieless.ingested).toEqual([]);
  });
});
