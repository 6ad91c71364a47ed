// The tenant's server-side consent policy (issue 16 item 3). Flag `consentRequired` names the
// categories an event must carry as granted in Segment's `context.consent.categoryPreferences`;
// an event that carries preferences without one of them is dropped (`consent_denied`). An event
// with no consent information at all — a server-side SDK, an older tag — follows
// `consentMissing`: `keep` (the default: the sender vouches for it) or `drop` (`consent_missing`).
// No required category: no policy, every event passes whatever it carries.
import type { TenantFlags } from '../tenants/flags.js';
import { perEventControl, type CollectionControl, type ConsentPreferences, type DropReason } from './controls.js';

/** null: the event may be stored; else why not. */
export function consentVerdict(flags: Pick<TenantFlags, 'consentRequired' | 'consentMissing'>, consent: ConsentPreferences | null): DropReason | null {
  if (flags.consentRequired.length === 0) return null;
  if (consent === null) return flags.consentMissing === 'drop' ? 'consent_missing' : null;
  // NOTE: Object.hasOwn: a category named `constructor` or `__proto__` is not granted by the prototype
  return flags.consentRequired.every((c) => Object.hasOwn(consent, c) && consent[c] === true) ? null : 'consent_denied';
}

export function consentControl(): CollectionControl {
  return perEventControl('consent', (tenant, e) => {
    const reason = consentVerdict(tenant.flags, e.consent);
    return reason === null ? e : { drop: reason };
  });
}
