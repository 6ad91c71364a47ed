// The subject access export route (GDPR Art. 15/20): GET …/users/{userId}/export streams the
// user's NDJSON export (libs/privacy/subject-export.ts) to a tenant admin or the operator. The
// audit row names the subject by its keyed hash, never in clear, and says whether the stream
// ended complete.
import { PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
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

/** The fleet collector: exports are served by the compactor (it holds the master key); the collector forwards them. */
export interface ExportForwardDeps {
  /** the compactor's HTTP port, e.g. http://compactor:8080 (COMPACTOR_URL) */
  compactorUrl: string;
}

declare module './admin-routes.js' {
  interface AdminDeps {
    /** subject access exports, where the master key is (embedded mode, the fleet's compactor) */
    exports?: Omit<ExportDeps, 'tenants'>;
    /** the fleet collector: the export route forwarded to the compactor */
    exportForward?: ExportForwardDeps;
  }
}

export const EXPORT_ROUTE = '/v1/admin/tenants/:tenantId/users/:userId/export';
export const EXPORT_AUDIT_ACTION = 'export.user';
/** the fleet collector's row of a forwarded export (the compactor writes EXPORT_AUDIT_ACTION's) */
export const EXPORT_FORWARD_AUDIT_ACTION = 'export.forward';

/** Registers the export route, or its forward to the compactor (on the admin plugin: its auth and audit hooks apply). */
export function registerExportRoutes(
  admin: FastifyInstance,
  deps: { tenants: Pick<TenantStore, 'getTenant'>; exports?: Omit<ExportDeps, 'tenants'>; exportForward?: ExportForwardDeps },
): void {
  if (deps.exports) registerExportRoute(admin, { ...deps.exports, tenants: deps.tenants });
  else if (deps.exportForward) registerExportForward(admin, deps.exportForward);
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

/**
 * The fleet collector's export route: the caller's own credential goes on to the compactor, which
 * authenticates it again against the same tenant store and serves the export; its answer streams
 * back as it comes. The collector checks access first, so only an admin key of the tenant is sent on.
 * NOTE: the compactor takes tenant API keys only (it has no operator token): the operator exports
 * with `tracklane export user --fleet`.
 */
export function registerExportForward(admin: FastifyInstance, deps: ExportForwardDeps): void {
  const base = new URL(deps.compactorUrl);
  admin.get(EXPORT_ROUTE, { preHandler: requireAccess({ scope: 'admin' }), config: { audit: EXPORT_FORWARD_AUDIT_ACTION } }, async (req, reply) => {
    if (req.principal?.kind === 'operator') {
      return reply.code(403).send({ error: 'forbidden', message: 'in the fleet the compactor serves exports to tenant API keys only; the operator runs `tracklane export user --fleet`' });
    }
    const abort = new AbortController();
    // NOTE: the caller gone, the compactor's reads stop too
    reply.raw.once('close', () => abort.abort());
    let res: Response;
    try {
      // TRICKY: the path exactly as received (still percent-encoded): the compactor decodes the same id
      res = await fetch(new URL(req.url, base), { headers: { authorization: req.headers.authorization ?? '' }, signal: abort.signal });
    } catch {
      return reply.code(503).header('retry-after', '5').send({ error: 'unavailable', message: 'the compactor, which serves exports, cannot be reached; retry shortly' });
    }
    reply.code(res.status).header('content-type', res.headers.get('content-type') ?? 'application/json').header('cache-control', 'no-store');
    return reply.send(res.body === null ? '' : Readable.fromWeb(res.body as WebReadableStream<Uint8Array>));
  });
}
