// The ids a user of an anonymizing tenant is stored under: its pseudonym under every key
// version up to the tenant's current one (DESIGN.md §3). An overwrite or erasure names the
// clear id; history written after the tenant switched anonymization on holds the pseudonym.
import type { KeyRing } from '../anonymize/key-ring.js';
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
    const versions = f?.keyVersion ?? 1;
    return Array.from({ length: versions }, (_, i) => keys.pseudonym(cmd.tenant_id, i + 1, cmd.id));
  };
}
