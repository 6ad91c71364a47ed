// The ids a user of an anonymizing tenant is stored under: its pseudonym under every key
// version up to the tenant's current one but the shredded ones (DESIGN.md §3). An overwrite or
// erasure names the clear id; history written after the tenant switched anonymization on holds
// the pseudonym. Under a shredded version it cannot be computed, by design: that history is
// unlinkable, and the receipt says which versions were (shreddedVersions).
import type { KeyRing } from '../anonymize/key-ring.js';
import { unshreddedVersions } from '../privacy/key-versions.js';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { TenantFlags } from '../tenants/flags.js';

export function pseudonymAliases(
  keys: KeyRing,
  flags: (tenantId: string) => TenantFlags | undefined,
): (cmd: OverwriteCommand, anonymizedTenants: ReadonlySet<string>) => string[] {
  return (cmd, anonymizedTenants) => {
    // NOTE: account data is never pseudonymized
    if (cmd.subject !== 'user') return [];
    const f = flags(cmd.tenant_id);
    // events in flight may be pseudonymized while none is stored yet: the flag counts too
    if (!anonymizedTenants.has(cmd.tenant_id) && !f?.anonymizeIdentity) return [];
    // NOTE: flags unknown here (a tenant deleted since?): version 1, which a KeyUnavailableError refuses if it must
    const versions = f === undefined ? [1] : unshreddedVersions(f);
    return versions.map((v) => keys.pseudonym(cmd.tenant_id, v, cmd.id));
  };
}
