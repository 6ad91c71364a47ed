// The collector's controls in their order (issue 16), for both runners: the daily ids of
// cookieless events first (a derived id is an id like any other for what follows), then the
// tenant's consent policy, the user's tracking preference, the bot policy and the tracking plan
// (whose violations are only worth recording for events that are otherwise kept). Every drop is
// counted by reason in `tracklane_collector_dropped_total`.
import { Counter, type Registry } from 'prom-client';
import { botControl } from './bot-policy.js';
import { consentControl } from './consent-policy.js';
import type { CollectionControl, CollectionControls, RequestAdmission } from './controls.js';
import { dailyIdControl, type DailySalts } from './daily-ids.js';
import { trackingPreferenceControl, type TrackingPreferences } from './tracking-preferences.js';

export interface StandardControlsOptions {
  salts: DailySalts;
  preferences: Pick<TrackingPreferences, 'tracked'>;
  /** the tenant's rate limit (429) */
  admission?: RequestAdmission;
  /** after the others, e.g. the tracking plan */
  more?: readonly CollectionControl[];
  metrics?: Registry;
}

export function standardControls(opts: StandardControlsOptions): CollectionControls {
  const dropped = new Counter({
    name: 'tracklane_collector_dropped_total',
    help: 'events the collector deliberately did not store, by reason (consent_denied, consent_missing, tracking_off, bot, plan_blocked)',
    labelNames: ['reason'],
    registers: opts.metrics ? [opts.metrics] : [],
  });
  return {
    ...(opts.admission ? { admission: opts.admission } : {}),
    derivesAnonymousIds: true,
    controls: [dailyIdControl(opts.salts), consentControl(), trackingPreferenceControl(opts.preferences), botControl(), ...(opts.more ?? [])],
    onDrop: (_tenantId, reason) => dropped.inc({ reason }),
  };
}
