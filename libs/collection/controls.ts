// Collection controls: what the collector decides about an event before anything after it sees
// the event (issue 16). A request first passes admission (the tenant's rate limit: 429 when it
// is over); its valid events then pass each control in order — a control keeps an event (maybe
// changed: a derived id, omitted properties), drops it with a reason (counted, never silent),
// or asks for a retry when what it needs cannot be read now (the client retries the request).
import type { RawEvent } from '../events/envelope.js';
import type { Tenant } from '../tenants/tenant-store.js';

/** Segment's `context.consent.categoryPreferences`: category → granted. */
export type ConsentPreferences = Readonly<Record<string, boolean>>;

/** A valid event with what the controls need from its message beyond the envelope. */
export interface CollectedEvent {
  event: RawEvent;
  /** `context.consent.categoryPreferences` as sent; null when the message carried none */
  consent: ConsentPreferences | null;
}

/** Why an event was deliberately not stored: the label of `tracklane_collector_dropped_total`. */
export type DropReason =
  | 'consent_denied'
  | 'consent_missing'
  | 'tracking_off'
  | 'bot'
  | 'plan_blocked'
  | (string & {});

export interface ControlVerdicts {
  kept: CollectedEvent[];
  dropped: { eventId: string; reason: DropReason }[];
  /** could not be decided now (e.g. Redis unreadable and nothing cached): the request is retried */
  retry: { eventId: string; reason: string }[];
}

/** One control. Sync where it can be: the collector's hot path. */
export interface CollectionControl {
  readonly name: string;
  apply(tenant: Tenant, events: readonly CollectedEvent[], now: number): ControlVerdicts | Promise<ControlVerdicts>;
}

export type Admission = { admitted: true } | { admitted: false; retryAfterSeconds: number };

/** Per request, before its events are validated: may refuse the request as a whole (429). */
export interface RequestAdmission {
  admit(tenant: Tenant, events: number, now: number): Admission | Promise<Admission>;
}

export interface CollectionControls {
  admission?: RequestAdmission;
  /**
   * Events with neither userId nor anonymousId are accepted and a control derives their
   * anonymous id (cookieless mode); without it they are rejected as Segment does.
   */
  derivesAnonymousIds?: boolean;
  /** applied in order: the first to drop an event decides its reason */
  controls: readonly CollectionControl[];
  /** counts a drop (metrics); called once per dropped event */
  onDrop?: (tenantId: string, reason: DropReason) => void;
}

export const NO_CONTROLS: CollectionControls = Object.freeze({ controls: [] });

/** Runs `events` through every control in order. */
export async function applyControls(
  controls: readonly CollectionControl[],
  tenant: Tenant,
  events: readonly CollectedEvent[],
  now: number,
): Promise<ControlVerdicts> {
  let kept: readonly CollectedEvent[] = events;
  const dropped: ControlVerdicts['dropped'] = [];
  const retry: ControlVerdicts['retry'] = [];
  for (const control of controls) {
    if (kept.length === 0) break;
    const v = await control.apply(tenant, kept, now);
    dropped.push(...v.dropped);
    retry.push(...v.retry);
    kept = v.kept;
  }
  return { kept: [...kept], dropped, retry };
}

/** A control that decides each event on its own, synchronously. */
export function perEventControl(
  name: string,
  decide: (tenant: Tenant, e: CollectedEvent, now: number) => CollectedEvent | { drop: DropReason } | { retry: string },
): CollectionControl {
  return {
    name,
    apply(tenant, events, now) {
      const out: ControlVerdicts = { kept: [], dropped: [], retry: [] };
      for (const e of events) {
        const v = decide(tenant, e, now);
        if ('drop' in v) out.dropped.push({ eventId: e.event.event_id, reason: v.drop });
        else if ('retry' in v) out.retry.push({ eventId: e.event.event_id, reason: v.retry });
        else out.kept.push(v);
      }
      return out;
    },
  };
}
