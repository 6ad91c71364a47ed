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

/** Highest key version a patch may set: the compactor derives one pseudonym per version. */
export const MAX_KEY_VERSION = 1000;
/** Most entries a patch may give piiTraits or scrubQueryParams. */
export const MAX_FLAG_NAMES = 100;
/** Longest trait or query-parameter name a patch may give (the map key limit, LIMITS.mapKeyChars). */
export const MAX_FLAG_NAME_CHARS = 128;

const flagNames = z
  .array(z.string().min(1, 'names must not be empty').max(MAX_FLAG_NAME_CHARS, `names must be at most ${MAX_FLAG_NAME_CHARS} characters`))
  .max(MAX_FLAG_NAMES, `at most ${MAX_FLAG_NAMES} names`);

/**
 * What an admin may PATCH; `anonymizeSince` is stamped by the server, never sent. Bounded, as
 * the admin API is input: each pseudonym version and each name costs work on every event or
 * overwrite.
 * NOTE: the bounds live here, not in tenantFlagsSchema: a record stored before them must still
 * load, since unreadable flags make the tenant fail closed (its events retried, never stored).
 */
export const flagsPatchSchema = tenantFlagsSchema
  .omit({ anonymizeSince: true })
  .extend({
    keyVersion: z.number().int().min(1).max(MAX_KEY_VERSION),
    piiTraits: flagNames,
    scrubQueryParams: flagNames,
  })
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
  /**
   * For a tenant the source does not hold at all: when its last complete, successful view of
   * all tenants started (ms). undefined when it cannot tell (unavailable, or the tenant exists
   * but its flags are unreadable: that must fail closed, not be taken as "no such tenant").
   * A tenant still unknown to a view that started well after an event was received does not
   * exist, and its events are rejected permanently instead of retried for ever. The in-process
   * stores answer "now" (they are the source of truth); a source without it never rejects a
   * tenant as unknown.
   */
  absentSince?(tenantId: string): number | undefined;
}

/**
 * A tenant missing from a view that started this long after an event was received is taken
 * as nonexistent. NOTE: longer than the Redis store's propagation window, so a tenant created
 * moments before its first event is never mistaken for a missing one.
 */
export const UNKNOWN_TENANT_GRACE_MS = 5_000;

/** retry (flags may appear) or dlq (the tenant does not exist) for an event whose flags are unknown. */
export function unknownTenantVerdict(source: FlagSource, tenantId: string, receivedAt: number): 'retry' | 'unknown' {
  const synced = source.absentSince?.(tenantId);
  return synced !== undefined && synced > receivedAt + UNKNOWN_TENANT_GRACE_MS ? 'unknown' : 'retry';
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
