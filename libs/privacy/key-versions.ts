// A tenant's pseudonym key versions as its flags describe them (DESIGN.md §3): which are derived
// from the master key, which are random keys in the key store, which are shredded, which one an
// event uses, and the rules of rotation and shredding. Pure: the routes, the keeper and the
// key ring all decide by these functions.
import { MAX_KEY_VERSION, type FlagsPatch, type TenantFlags } from '../tenants/flags.js';

export type KeyOrigin = 'derived' | 'stored';
export type KeyState = 'current' | 'previous' | 'retired' | 'shredded';

export interface KeyVersionInfo {
  version: number;
  origin: KeyOrigin;
  /**
   * current: new events use it; previous: events received before `keyVersionSince` still do;
   * retired: no new event uses it, its pseudonyms are still computable (to find history);
   * shredded: every copy destroyed.
   */
  state: KeyState;
}

type KeyFlags = Pick<TenantFlags, 'keyVersion' | 'keyVersionSince' | 'storedKeysFrom' | 'shreddedKeyVersions'>;

/** The key id of a stored version: the associated data of its wrapping, the HKDF info of a derived one's. */
export function keyId(tenantId: string, version: number): string {
  // NOTE: unambiguous even for odd tenant ids: the suffix `:v<digits>` cannot be re-split.
  return `tenant:${tenantId}:v${version}`;
}

export function keyOrigin(flags: KeyFlags, version: number): KeyOrigin {
  return flags.storedKeysFrom !== null && version >= flags.storedKeysFrom ? 'stored' : 'derived';
}

export function isShredded(flags: KeyFlags, version: number): boolean {
  return flags.shreddedKeyVersions.length > 0 && flags.shreddedKeyVersions.includes(version);
}

/**
 * The version an event received at `receivedAt` is pseudonymized with: the current one, or the
 * one before it for events received before the rotation's stamp — unless that one is shredded
 * (a late event then takes the current version: a pseudonym all the same, never a clear id).
 */
export function versionFor(flags: KeyFlags, receivedAt: number): number {
  const current = flags.keyVersion;
  if (flags.keyVersionSince === null || receivedAt >= flags.keyVersionSince || current <= 1) return current;
  const previous = current - 1;
  return isShredded(flags, previous) ? current : previous;
}

/** Every version from 1 to the current one, with its origin and state. */
export function keyVersions(flags: KeyFlags, now: number): KeyVersionInfo[] {
  return Array.from({ length: flags.keyVersion }, (_, i) => {
    const version = i + 1;
    return { version, origin: keyOrigin(flags, version), state: stateOf(flags, version, now) };
  });
}

function stateOf(flags: KeyFlags, version: number, now: number): KeyState {
  if (isShredded(flags, version)) return 'shredded';
  if (version === flags.keyVersion) return 'current';
  if (version === flags.keyVersion - 1 && flags.keyVersionSince !== null && now < flags.keyVersionSince) return 'previous';
  return 'retired';
}

/** The versions whose pseudonyms can still be computed (history under them can be found). */
export function unshreddedVersions(flags: KeyFlags): number[] {
  return Array.from({ length: flags.keyVersion }, (_, i) => i + 1).filter((v) => !isShredded(flags, v));
}

/** The stored versions whose key must exist in the key store. */
export function storedVersionsNeeded(flags: KeyFlags): number[] {
  if (flags.storedKeysFrom === null) return [];
  const from = flags.storedKeysFrom;
  return unshreddedVersions(flags).filter((v) => v >= from);
}

/** A refused key operation: the HTTP status and a message naming no key material. */
export interface KeyRefusal {
  status: 400 | 404 | 409;
  error: string;
  message: string;
}

/** The patch of a rotation: the next version, a stored one. */
export function rotationPatch(flags: KeyFlags): FlagsPatch | KeyRefusal {
  const next = flags.keyVersion + 1;
  if (next > MAX_KEY_VERSION) return { status: 409, error: 'too_many_versions', message: `a tenant has at most ${MAX_KEY_VERSION} key versions` };
  return { keyVersion: next, storedKeysFrom: flags.storedKeysFrom ?? next };
}

/** The patch that shreds `version`, or why it cannot be; `already` when it is shredded already (idempotent). */
export function shredPatch(flags: KeyFlags, version: number, now: number): FlagsPatch | KeyRefusal | 'already' {
  if (!Number.isSafeInteger(version) || version < 1 || version > flags.keyVersion) {
    return { status: 404, error: 'not_found', message: `key version ${String(version)} does not exist (versions 1 to ${flags.keyVersion})` };
  }
  if (isShredded(flags, version)) return 'already';
  if (keyOrigin(flags, version) === 'derived') {
    return {
      status: 409,
      error: 'derived_version',
      message: `key version ${version} is derived from the master key, so it can always be recomputed and cannot be shredded; translate its history to a stored version (POST …/pseudonymize-history) to retire it`,
    };
  }
  if (version === flags.keyVersion) {
    return { status: 409, error: 'current_version', message: `key version ${version} is the current one: rotate (POST …/pseudonym-keys) before shredding it` };
  }
  if (stateOf(flags, version, now) === 'previous') {
    return { status: 409, error: 'rotation_in_progress', message: `key version ${version} is still used for events received before ${new Date(flags.keyVersionSince ?? now).toISOString()}; shred it after that` };
  }
  return { shreddedKeyVersions: [...flags.shreddedKeyVersions, version].sort((a, b) => a - b) };
}

export function isRefusal(x: unknown): x is KeyRefusal {
  return typeof x === 'object' && x !== null && 'status' in x && 'error' in x;
}
