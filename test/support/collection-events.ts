// Events and tenants for the collection controls' unit tests.
import { DEFAULT_FLAGS, type TenantFlags } from '../../libs/tenants/flags.js';
import type { Tenant } from '../../libs/tenants/tenant-store.js';
import type { RawEvent } from '../../libs/events/envelope.js';
import type { CollectedEvent, ConsentPreferences } from '../../libs/collection/controls.js';

export function tenantWith(flags: Partial<TenantFlags> = {}, tenantId = 'acme'): Tenant {
  return { tenantId, createdAt: 0, flags: { ...DEFAULT_FLAGS, ...flags }, keys: { writeKeys: [], apiKeys: [] } };
}

let seq = 0;
export function collected(over: Partial<RawEvent> = {}, consent: ConsentPreferences | null = null): CollectedEvent {
  const event: RawEvent = {
    event_id: `e${++seq}`,
    tenant_id: 'acme',
    type: 'track',
    name: 'Clicked',
    user_id: 'u1',
    anonymous_id: null,
    previous_id: null,
    session_id: null,
    account_id: null,
    occurred_at: 0,
    sent_at: null,
    received_at: 0,
    timestamp_clamped: false,
    ip: '203.0.113.9',
    user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    context: { url: null, path: null, referrer: null, title: null, search: null, locale: null, timezone: null, screen_width: null, screen_height: null, library_name: null, library_version: null },
    element: null,
    properties: {},
    traits: {},
    account_traits: {},
    ...over,
  };
  return { event, consent };
}
