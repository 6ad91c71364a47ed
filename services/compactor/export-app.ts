// The fleet's subject access export: the compactor serves it, being the one service that holds
// the master key (pseudonymized history is found by it), on its health port beside /healthz,
// /readyz and /metrics. Tenant API keys only, checked by the collector's authenticator against
// the same tenant store; every export audited under the subject hash. The fleet collector
// forwards the route here (services/collector/export-routes.ts registerExportForward).
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { fastify, type FastifyError, type FastifyInstance } from 'fastify';
import type { KeyRing } from '../../libs/anonymize/key-ring.js';
import { createAuditLog } from '../../libs/audit/audit-log.js';
import { pseudonymAliases } from '../../libs/compactor/pseudonym-aliases.js';
import { safeErrorFields } from '../../libs/core/errors.js';
import type { Logger } from '../../libs/core/logger.js';
import { userAliases } from '../../libs/privacy/subject-export.js';
import { clickhouseExportSource } from '../../libs/privacy/subject-export-source.js';
import type { SubjectHash } from '../../libs/privacy/subject-hash.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { authenticateHook, createAuthenticator, createFailureLimiter } from '../collector/admin-auth.js';
import { registerExportRoute } from '../collector/export-routes.js';

export interface CompactorExportAppOptions {
  tenants: Pick<TenantStore, 'apiKey' | 'credentialsAvailable' | 'getTenant' | 'get'>;
  clickhouse: ClickHouseClient;
  keys: KeyRing;
  subjectHash: SubjectHash;
  logger: Logger;
}

export function compactorExportApp(opts: CompactorExportAppOptions): FastifyInstance {
  const { logger } = opts;
  // NOTE: as the collector's app: ids are path parameters (≤ 128 characters, URL-encoded up to 3×);
  // request ids name the export in the audit log
  const app = fastify({ logger: false, routerOptions: { maxParamLength: 512 }, genReqId: () => randomUUID() });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: 'bad_request', message: err.message });
    logger.error({ ...safeErrorFields(err), route: req.routeOptions.url }, 'export request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; the export can be retried' });
  });
  const audit = createAuditLog({ client: opts.clickhouse, logger });
  // NOTE: no operator token here: the compactor's port takes tenant keys only
  const authenticate = createAuthenticator({ operatorToken: null, tenants: opts.tenants });
  const failures = createFailureLimiter();
  app.register(async (admin) => {
    admin.decorateRequest('principal', null);
    admin.decorateRequest('auditDetails', null);
    admin.addHook('onRequest', authenticateHook(authenticate, failures));
    admin.addHook('onResponse', async (req, reply) => {
      const principal = req.principal;
      const action = req.routeOptions.config.audit;
      if (principal === null || action === undefined) return;
      await audit.record({
        at: Date.now(),
        tenantId: (req.params as { tenantId?: string }).tenantId ?? '',
        credentialKind: principal.kind,
        keyId: principal.keyId,
        action,
        requestId: req.id,
        status: reply.statusCode,
        source: req.ip,
        details: req.auditDetails ?? {},
      });
    });
    registerExportRoute(admin, {
      tenants: opts.tenants,
      source: clickhouseExportSource(opts.clickhouse),
      aliasesOf: userAliases(pseudonymAliases(opts.keys, (t) => opts.tenants.get(t))),
      subjectHash: opts.subjectHash,
      logger,
    });
  });
  return app;
}
