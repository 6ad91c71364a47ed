// Events and tenants for the collection controls' unit tests.
import { DEFAULT_FLAGS, type TenantFlags } from '../../libs/tenants/flags.js';
import type { Tenant } from '../../libs/tenants/tenant-store.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import type { CollectedEvent, ConsentPreferences } from '../../libs/collection/controls.js';
import { rawMinimal } from './record-fixtures.js';

export function tenantWith(flags: Partial<TenantFlags> = {}, tenantId = 'acme'): Tenant {
  return { tenantId, createdAt: 0, flags: { ...DEFAULT_FLAGS, ...flags }, keys: { writeKeys: [], apiKeys: [] } };
}

let seq = 0;
/** An identified track event of a desktop Chrome user, with `over` applied. */
export function collected(over: Partial<RawEvent> = {}, consent: ConsentPreferences | null = null): CollectedEvent {
  const event: RawEvent = {
    ...rawMinimal,
    event_id: `e${++seq}`,
    tenant_id: 'acme',
    name: 'Clicked',
    user_id: 'u1',
    ip: '203.0.113.9',
    user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    ...over,
  };
  return { event, consent };
}
