// Per-tenant flags (DESIGN.md §3). Held in Redis in the fleet and in an in-process store in
// embedded mode; stages read them through a synchronous FlagSource so the hot path never awaits.
import { z } from 'zod';

export const IP_POLICIES = ['full', 'geo_then_mask', 'mask', 'drop'] as const;
export const ipPolicySchema = z.enum(IP_POLICIES);
export type IpPolicy = z.infer<typeof ipPolicySchema>;

export const tenantFlagsSchema = z.object({
  anonymizeIdentity: z.boolean(),
  /** ms since epoch; forward only: events received before it keep the clear id */
  anonymizeSince: z.number().int().nullable(),
  /** key version used for new pseudonyms */
  keyVersion: z.number().int().min(1),
  ipPolicy: ipPolicySchema,
  /** geo opt-out: false means no geo and no ip org lookup at all */
  resolveIp: z.boolean(),
  /** trait names the tenant marked as PII (hashed by the anonymizer, scrubbed on erasure) */
  piiTraits: z.array(z.string()),
  /** extra query parameters to redact from URLs, on top of the default list */
  scrubQueryParams: z.array(z.string()),
});
export type TenantFlags = z.infer<typeof tenantFlagsSchema>;

export const DEFAULT_FLAGS: TenantFlags = Object.freeze({
  anonymizeIdentity: false,
  anonymizeSince: null,
  keyVersion: 1,
  ipPolicy: 'full',
  resolveIp: true,
  piiTraits: [],
  scrubQueryParams: [],
}) as TenantFlags;

/** What an admin may PATCH; `anonymizeSince` is stamped by the server, never sent. */
export const flagsPatchSchema = tenantFlagsSchema
  .omit({ anonymizeSince: true })
  .partial()
  .strict();
export type FlagsPatch = z.infer<typeof flagsPatchSchema>;

/**
 * Synchronous view of tenant flags for stages. `undefined` means "not known right now"
 * (e.g. Redis unreachable and nothing cached): stages that could leak identity must then
 * fail closed (retry), never assume defaults.
 */
export interface FlagSource {
  get(tenantId: string): TenantFlags | undefined;
}

/**
 * Applies a patch to flags at server time `now`: switching anonymization on stamps
 * `anonymizeSince`; switching it off clears it; re-enabling restarts the forward window.
 */
export function applyFlagsPatch(current: TenantFlags, patch: FlagsPatch, now: number): TenantFlags {
  const next: TenantFlags = { ...current, ...patch };
  if (patch.anonymizeIdentity === true && !current.anonymizeIdentity) next.anonymizeSince = now;
  if (patch.anonymizeIdentity === false) next.anonymizeSince = null;
  return next;
}
