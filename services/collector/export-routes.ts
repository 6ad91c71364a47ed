// The subject access export route (GDPR Art. 15/20): GET …/users/{userId}/export streams the
// user's NDJSON export (libs/privacy/subject-export.ts) to a tenant admin or the operator. The
// audit row names the subject by its keyed hash, never in clear, and says whether the stream
// ended complete.
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { ExportAbortedError, ndjsonWriter } from '../../libs/privacy/export-writer.js';
import { checkSubjectId, ndjsonLine, openSubjectExport, SubjectIdError, type SubjectExport, type SubjectExportSource } from '../../libs/privacy/subject-export.js';
import type { SubjectHash } from '../../libs/privacy/subject-hash.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface ExportDeps {
  tenants: Pick<TenantStore, 'getTenant'>;
  source: SubjectExportSource;
  /** the user's pseudonyms under every key version of the tenant; needs the master key */
  aliasesOf: (tenantId: string, userId: string) => string[];
  /** the receipts' keyed hash (libs/privacy/subject-hash.ts) */
  subjectHash: SubjectHash;
  logger: Logger;
  now?: () => number;
}

declare module './admin-routes.js' {
  interface AdminDeps {
    /** subject access exports; the route exists only where the master key is (embedded mode, the fleet's compactor) */
    exports?: Omit<ExportDeps, 'tenants'>;
  }
}

export const EXPORT_ROUTE = '/v1/admin/tenants/:tenantId/users/:userId/export';
export const EXPORT_AUDIT_ACTION = 'export.user';

/** Registers the export route when `deps.exports` is given (on the admin plugin: its auth and audit hooks apply). */
export function registerExportRoutes(admin: FastifyInstance, deps: { tenants: Pick<TenantStore, 'getTenant'>; exports?: Omit<ExportDeps, 'tenants'> }): void {
  if (deps.exports) registerExportRoute(admin, { ...deps.exports, tenants: deps.tenants });
}

export function registerExportRoute(admin: FastifyInstance, deps: ExportDeps): void {
  admin.get(EXPORT_ROUTE, { preHandler: requireAccess({ scope: 'admin' }), config: { audit: EXPORT_AUDIT_ACTION } }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    if (!deps.tenants.getTenant(tenantId)) return notFound(reply, tenantId);
    const { userId } = req.params as { userId: string };
    try {
      checkSubjectId(userId);
    } catch (err) {
      if (err instanceof SubjectIdError) return reply.code(400).send({ error: 'bad_request', message: err.message });
      throw err;
    }
    req.auditDetails = { subjectIdHash: deps.subjectHash(tenantId, userId), complete: 'false' };
    // NOTE: profiles, accounts and receipts are read before the answer starts: a failure there is a 5xx
    const exp = await openSubjectExport({ tenantId, userId, aliases: deps.aliasesOf(tenantId, userId), subjectHash: deps.subjectHash, source: deps.source, ...(deps.now ? { now: deps.now } : {}) });
    const out = new PassThrough();
    void pump(exp, out, req, deps.logger);
    return reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('cache-control', 'no-store').send(out);
  });
}

/**
 * Streams the records into `out`. A failure once the answer has started cannot change its status:
 * the stream then ends with an `error` line and no summary (a stream without a summary is incomplete).
 */
async function pump(exp: SubjectExport, out: PassThrough, req: FastifyRequest, logger: Logger): Promise<void> {
  const counts = () => ({ profiles: String(exp.counts.profiles), events: String(exp.counts.events), receipts: String(exp.counts.receipts) });
  try {
    await exp.run(ndjsonWriter(out));
    // NOTE: before end(): the audit hook runs once the answer is finished and reads these
    req.auditDetails = { ...req.auditDetails, ...counts(), complete: 'true' };
    out.end();
  } catch (err) {
    req.auditDetails = { ...req.auditDetails, ...counts() };
    if (err instanceof ExportAbortedError || out.destroyed) {
      logger.info({ requestId: req.id }, 'subject export stopped: the reader went away');
      out.destroy();
      return;
    }
    logger.error({ ...safeErrorFields(err), requestId: req.id }, 'subject export failed part way');
    out.end(ndjsonLine({ kind: 'error', message: 'the export failed part way and is incomplete (it has no summary line); retry it' }));
  }
}
