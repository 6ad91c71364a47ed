// Per-tenant flags (DESIGN.md §3). Held in Redis in the fleet and in an in-process store in
// embedded mode; stages read them through a synchronous FlagSource so the hot path never awaits.
import { z } from 'zod';

export const IP_POLICIES = ['full', 'geo_then_mask', 'mask', 'drop'] as const;
export const ipPolicySchema = z.enum(IP_POLICIES);
export type IpPolicy = z.infer<typeof ipPolicySchema>;

/** What happens to an event whose user agent is a bot's (libs/collection/bot-policy.ts). */
export const BOT_POLICIES = ['keep', 'flag', 'drop'] as const;
export type BotPolicy = (typeof BOT_POLICIES)[number];

/** What happens to an event that carries no consent information at all (server-side SDKs). */
export const CONSENT_MISSING_POLICIES = ['keep', 'drop'] as const;
export type ConsentMissingPolicy = (typeof CONSENT_MISSING_POLICIES)[number];

export const tenantFlagsSchema = z.object({
  anonymizeIdentity: z.boolean(),
  /** ms since epoch; forward only: events received before it keep the clear id */
  anonymizeSince: z.number().int().nullable(),
  /** key version used for new pseudonyms (libs/privacy/key-versions.ts) */
  keyVersion: z.number().int().min(1),
  /**
   * ms: events received from then on use `keyVersion`, earlier ones the version before it
   * (stamped ahead like anonymizeSince, so every replica and the key's creation are ready);
   * null: no rotation pending.
   * NOTE: the key fields default for a record written before the key store existed.
   */
  keyVersionSince: z.number().int().nullable().default(null),
  /**
   * First version whose key is a random one kept wrapped in the key store (shreddable); the
   * versions below it are derived from the master key (recomputable, never shreddable). null:
   * every version is derived (a tenant from before the key store).
   */
  storedKeysFrom: z.number().int().min(1).nullable().default(null),
  /** versions whose every key copy was destroyed: no pseudonym of them can be made again */
  shreddedKeyVersions: z.array(z.number().int().min(1)).default([]),
  ipPolicy: ipPolicySchema,
  /** geo opt-out: false means no geo and no ip org lookup at all */
  resolveIp: z.boolean(),
  /** trait names the tenant marked as PII (hashed by the anonymizer, scrubbed on erasure) */
  piiTraits: z.array(z.string()),
  /** extra query parameters to redact from URLs, on top of the default list */
  scrubQueryParams: z.array(z.string()),
  /**
   * Consent categories an event must carry as granted (`context.consent.categoryPreferences`)
   * to be stored; empty: no consent policy. NOTE: the collection-control fields default for a
   * record written before they existed.
   */
  consentRequired: z.array(z.string()).default([]),
  /** events with no consent information at all, when consentRequired is not empty */
  consentMissing: z.enum(CONSENT_MISSING_POLICIES).default('keep'),
  /** `flag`: stored with device_type 'bot'; `keep`: stored unlabelled; `drop`: dropped and counted */
  botPolicy: z.enum(BOT_POLICIES).default('flag'),
  /** events per second the tenant may send (token bucket); null: no limit */
  rateLimitPerSecond: z.number().int().min(1).nullable().default(null),
  /** events the bucket holds when full (a burst above the rate); null: one second's worth */
  rateLimitBurst: z.number().int().min(1).nullable().default(null),
});
export type TenantFlags = z.infer<typeof tenantFlagsSchema>;

export const DEFAULT_FLAGS: TenantFlags = Object.freeze({
  anonymizeIdentity: false,
  anonymizeSince: null,
  keyVersion: 1,
  keyVersionSince: null,
  // NOTE: a new tenant's versions are all stored ones (shreddable); see storedKeysFrom
  storedKeysFrom: 1,
  shreddedKeyVersions: [],
  ipPolicy: 'full',
  resolveIp: true,
  piiTraits: [],
  scrubQueryParams: [],
  consentRequired: [],
  consentMissing: 'keep',
  botPolicy: 'flag',
  rateLimitPerSecond: null,
  rateLimitBurst: null,
}) as TenantFlags;

/** Highest key version a patch may set: the compactor derives one pseudonym per version. */
export const MAX_KEY_VERSION = 1000;
/** Most entries a patch may give piiTraits or scrubQueryParams. */
export const MAX_FLAG_NAMES = 100;
/** Longest trait or query-parameter name a patch may give (the map key limit, LIMITS.mapKeyChars). */
export const MAX_FLAG_NAME_CHARS = 128;
/** Highest rate or burst a patch may set (events per second): beyond any one collector fleet. */
export const MAX_RATE_LIMIT = 10_000_000;

const flagNames = z
  .array(z.string().min(1, 'names must not be empty').max(MAX_FLAG_NAME_CHARS, `names must be at most ${MAX_FLAG_NAME_CHARS} characters`))
  .max(MAX_FLAG_NAMES, `at most ${MAX_FLAG_NAMES} names`);

/**
 * What a store's patchFlags takes; `anonymizeSince` and `keyVersionSince` are stamped by the
 * server, never sent. Bounded, as it carries admin input: each pseudonym version and each name
 * costs work on every event or overwrite. The key fields are changed through the key routes
 * only (adminFlagsPatchSchema leaves them out).
 * NOTE: the bounds live here, not in tenantFlagsSchema: a record stored before them must still
 * load, since unreadable flags make the tenant fail closed (its events retried, never stored).
 */
export const flagsPatchSchema = tenantFlagsSchema
  .omit({ anonymizeSince: true, keyVersionSince: true })
  .extend({
    keyVersion: z.number().int().min(1).max(MAX_KEY_VERSION),
    storedKeysFrom: z.number().int().min(1).max(MAX_KEY_VERSION).nullable(),
    shreddedKeyVersions: z.array(z.number().int().min(1).max(MAX_KEY_VERSION)).max(MAX_KEY_VERSION),
    piiTraits: flagNames,
    scrubQueryParams: flagNames,
    // NOTE: redeclared without the stored record's defaults: a default inside partial() would
    // fill every patch with it, and a PATCH of another flag would reset these.
    consentRequired: flagNames,
    consentMissing: z.enum(CONSENT_MISSING_POLICIES),
    botPolicy: z.enum(BOT_POLICIES),
    rateLimitPerSecond: z.number().int().min(1).max(MAX_RATE_LIMIT).nullable(),
    rateLimitBurst: z.number().int().min(1).max(MAX_RATE_LIMIT).nullable(),
  })
  .partial()
  .strict();
export type FlagsPatch = z.infer<typeof flagsPatchSchema>;

/** Flag fields that only the pseudonym-key routes change (rotation, shredding). */
export const KEY_FIELDS = ['keyVersion', 'storedKeysFrom', 'shreddedKeyVersions'] as const;

/** What PATCH /v1/admin/tenants/{id}/flags accepts: every flag but the key fields. */
export const adminFlagsPatchSchema = flagsPatchSchema.omit({ keyVersion: true, storedKeysFrom: true, shreddedKeyVersions: true }).strict();

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
 * `anonymizeSince`; switching it off clears it; re-enabling restarts the forward window. A new
 * key version stamps `keyVersionSince` the same way; shredded versions only ever add up.
 */
export function applyFlagsPatch(current: TenantFlags, patch: FlagsPatch, now: number): TenantFlags {
  const next: TenantFlags = { ...current, ...patch };
  // TRICKY: a shred is never undone and a tenant's stored versions never become derived again,
  // whatever a patch computed from an older read says: two concurrent shreds both stand.
  next.shreddedKeyVersions = [...new Set([...current.shreddedKeyVersions, ...(patch.shreddedKeyVersions ?? [])])].sort((a, b) => a - b);
  next.storedKeysFrom = current.storedKeysFrom ?? patch.storedKeysFrom ?? null;
  if (patch.anonymizeIdentity === true && !current.anonymizeIdentity) next.anonymizeSince = now;
  if (patch.anonymizeIdentity === false) next.anonymizeSince = null;
  if (patch.keyVersion !== undefined && patch.keyVersion !== current.keyVersion) next.keyVersionSince = now;
  return next;
}

/** Whether a patch's result carries a new forward stamp (anonymizeSince or keyVersionSince). */
export function stampsAhead(current: TenantFlags, next: TenantFlags): boolean {
  return (next.anonymizeSince !== null && next.anonymizeSince !== current.anonymizeSince) || (next.keyVersionSince !== null && next.keyVersionSince !== current.keyVersionSince);
}
