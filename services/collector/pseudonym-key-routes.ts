// A tenant's pseudonym key versions over the admin API (DESIGN.md §3): list them, rotate to a
// new stored version, shred a retired one. These routes change flags only (the version list);
// the key material is made and destroyed by the key keeper where the master key is — in
// process when embedded (`keeper` given: the answer waits for it), in the compactor in the
// fleet (the answer says pending until its receipt). The collector never holds the master key.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ShredReceipt, ShredReceiptStore } from '../../libs/clickhouse/tables/pseudonym-keys.js';
import { describeIssues } from '../../libs/events/segment-message.js';
import type { KeyKeeper } from '../../libs/privacy/key-keeper.js';
import { isRefusal, keyVersions, rotationPatch, shredPatch, type KeyRefusal } from '../../libs/privacy/key-versions.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface PseudonymKeyDeps {
  tenants: TenantStore;
  /** embedded: the keeper in this process, run before answering */
  keeper?: Pick<KeyKeeper, 'sync' | 'holds'>;
  /** the fleet: whether a compactor (whose keeper makes and destroys keys) runs; null: unknown */
  compactorSeen?: () => Promise<boolean | null>;
  /** shred receipts; absent: none can be read here (a fleet collector without ClickHouse) */
  shredReceipts?: ShredReceiptStore;
  now?: () => number;
}

const versionParam = z.coerce.number().int().min(1).max(1_000_000);
const shredBody = z.object({ confirm: z.number().int() }).strict();

/** A receipt as the API shows it: camelCase, times in ms. */
function describeShred(r: ShredReceipt) {
  return {
    version: r.version,
    status: r.status,
    destroyed: r.destroyed,
    remaining: r.remaining,
    outsideCopies: r.outside_copies,
    reason: r.reason,
    verifiedAt: r.verified_at,
  };
}

export function registerPseudonymKeyRoutes(admin: FastifyInstance, deps: PseudonymKeyDeps): void {
  const now = deps.now ?? Date.now;
  const asAdmin = requireAccess({ scope: 'admin' });
  const refuse = (reply: FastifyReply, r: KeyRefusal) => reply.code(r.status).send({ error: r.error, message: r.message });
  const receiptsOf = async (tenantId: string): Promise<Map<number, ShredReceipt>> =>
    new Map((deps.shredReceipts ? await deps.shredReceipts.forTenant(tenantId) : []).map((r) => [r.version, r]));
  /** the fleet refuses a key change no compactor would carry out */
  const noCompactor = async (): Promise<boolean> => deps.keeper === undefined && deps.compactorSeen !== undefined && (await deps.compactorSeen()) === false;

  admin.get('/v1/admin/tenants/:tenantId/pseudonym-keys', { preHandler: asAdmin }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    const receipts = await receiptsOf(tenantId);
    const versions = keyVersions(tenant.flags, now()).map((v) => {
      const receipt = receipts.get(v.version);
      return v.state === 'shredded' ? { ...v, shred: receipt ? describeShred(receipt) : { status: 'pending' } } : v;
    });
    return reply.send({ tenantId, current: tenant.flags.keyVersion, currentSince: tenant.flags.keyVersionSince, versions });
  });

  admin.post('/v1/admin/tenants/:tenantId/pseudonym-keys', { preHandler: asAdmin, config: { audit: 'pseudonym_key.rotate' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    if (await noCompactor()) return reply.code(503).send({ error: 'no_compactor', message: 'no compactor has been seen in the last 30 s: the compactor creates the new key, rotate once one runs' });
    const patch = rotationPatch(tenant.flags);
    if (isRefusal(patch)) return refuse(reply, patch);
    const flags = await deps.tenants.patchFlags(tenantId, patch, now());
    if (!flags) return notFound(reply, tenantId);
    req.auditDetails = { version: String(flags.keyVersion) };
    if (deps.keeper) {
      await deps.keeper.sync();
      if (!deps.keeper.holds(tenantId, flags.keyVersion)) {
        return reply.code(503).send({ error: 'key_not_created', message: `key version ${flags.keyVersion} is current but its key could not be stored yet; events wait for it, the next pass retries` });
      }
    }
    return reply.code(201).send({ tenantId, version: flags.keyVersion, since: flags.keyVersionSince });
  });

  admin.get('/v1/admin/tenants/:tenantId/pseudonym-keys/:version', { preHandler: asAdmin }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const version = versionParam.safeParse((req.params as { version?: string }).version);
    if (!version.success) return reply.code(400).send({ error: 'bad_request', message: 'version must be a positive integer' });
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    const info = keyVersions(tenant.flags, now()).find((v) => v.version === version.data);
    if (!info) return reply.code(404).send({ error: 'not_found', message: `key version ${version.data} does not exist` });
    const receipt = info.state === 'shredded' ? (await receiptsOf(tenantId)).get(info.version) : undefined;
    return reply.send({ tenantId, ...info, ...(info.state === 'shredded' ? { shred: receipt ? describeShred(receipt) : { status: 'pending' } } : {}) });
  });

  admin.delete('/v1/admin/tenants/:tenantId/pseudonym-keys/:version', { preHandler: asAdmin, config: { audit: 'pseudonym_key.shred' } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const version = versionParam.safeParse((req.params as { version?: string }).version);
    if (!version.success) return reply.code(400).send({ error: 'bad_request', message: 'version must be a positive integer' });
    const body = shredBody.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad_request', message: `a shred needs the body { "confirm": <version> }: ${describeIssues(body.error)}` });
    if (body.data.confirm !== version.data) return reply.code(400).send({ error: 'bad_request', message: `confirm (${body.data.confirm}) must repeat the version to shred (${version.data}): a shred cannot be undone` });
    req.auditDetails = { version: String(version.data) };
    const tenant = deps.tenants.getTenant(tenantId);
    if (!tenant) return notFound(reply, tenantId);
    const patch = shredPatch(tenant.flags, version.data, now());
    if (isRefusal(patch)) return refuse(reply, patch);
    if (patch !== 'already') {
      if (await noCompactor()) return reply.code(503).send({ error: 'no_compactor', message: "no compactor has been seen in the last 30 s: the compactor destroys the key's copies, shred once one runs" });
      if (!(await deps.tenants.patchFlags(tenantId, patch, now()))) return notFound(reply, tenantId);
    }
    await deps.keeper?.sync();
    const receipt = (await receiptsOf(tenantId)).get(version.data);
    // NOTE: from here on no code path computes a pseudonym of the version (the flags refuse it)
    if (receipt?.status === 'verified') return reply.code(200).send({ tenantId, ...describeShred(receipt) });
    return reply.code(202).send({ tenantId, version: version.data, status: receipt?.status ?? 'pending', ...(receipt ? { remaining: receipt.remaining, reason: receipt.reason } : {}) });
  });
}
