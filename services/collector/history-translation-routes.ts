// The opt-in translation of a tenant's history (issue 15 item 2) over the admin API: the route
// checks the tenant anonymizes, records a `pending` receipt and answers 202 with its request id;
// the process holding the master key (embedded runner, fleet compactor) picks the receipt up and
// runs it (libs/compactor/translation-poller.ts). `GET /v1/admin/requests/:id` reports it.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { describeIssues } from '../../libs/events/segment-message.js';
import { pendingTranslation, type TranslationReceipt } from '../../libs/compactor/translation-receipts.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';
import { notFound, tenantIdParam } from './route-params.js';

export interface HistoryTranslationDeps {
  tenants: TenantStore;
  /** records the request's pending receipt durably (and, embedded, wakes the poller) */
  request(receipt: TranslationReceipt): Promise<void>;
  /** the fleet: whether a compactor runs (null: unknown); accepted requests say when none does */
  compactorSeen?: () => Promise<boolean | null>;
  now?: () => number;
}

/** What the body may hold: nothing yet (an empty object or none). */
const bodySchema = z.object({}).strict();

export const NO_COMPACTOR_FOR_TRANSLATION = 'no compactor has been seen in the last 30 s: the translation is recorded and runs when one does';

export function registerHistoryTranslationRoutes(admin: FastifyInstance, deps: HistoryTranslationDeps): void {
  const now = deps.now ?? Date.now;
  admin.post(
    '/v1/admin/tenants/:tenantId/pseudonymize-history',
    { preHandler: requireAccess({ scope: 'admin' }), config: { audit: 'history.pseudonymize' } },
    async (req, reply) => {
      const tenantId = tenantIdParam(req, reply);
      if (tenantId === undefined) return reply;
      const body = bodySchema.safeParse(req.body ?? {});
      if (!body.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(body.error) });
      if (deps.tenants.getTenant(tenantId) === undefined) return notFound(reply, tenantId);
      const flags = deps.tenants.get(tenantId);
      if (!flags?.anonymizeIdentity) {
        return reply.code(409).send({
          error: 'anonymization_off',
          message: 'history is translated to pseudonyms only for a tenant that anonymizes: switch anonymizeIdentity on first',
        });
      }
      const at = now();
      const requestId = randomUUID();
      // NOTE: the stamp as of now; the compactor takes the flag's stamp when it runs (a later re-opt-in reaches further)
      await deps.request(pendingTranslation(requestId, tenantId, flags.anonymizeSince ?? at, at));
      req.auditDetails = { requestId, keyVersion: String(flags.keyVersion) };
      const noCompactor = deps.compactorSeen && (await deps.compactorSeen()) === false;
      return reply.code(202).send(noCompactor ? { requestId, warning: NO_COMPACTOR_FOR_TRANSLATION } : { requestId });
    },
  );
}
