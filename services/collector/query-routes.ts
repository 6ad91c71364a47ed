// Analyst SQL over the admin API: `POST /v1/admin/tenants/:tenantId/query` for a tenant's
// `read` key (its rows only, analyst tables only — enforced by the engine, see
// libs/clickhouse/analyst-sql.ts) and `POST /v1/admin/query` for the operator. Both bounded;
// at most `maxConcurrentPerKey` queries run at once per credential.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { describeIssues } from '../../libs/events/segment-message.js';
import { requireAccess } from './admin-auth.js';
import { tenantIdParam } from './route-params.js';

export interface AnalystQueries {
  /** rejects with an error carrying a 4xx `status` and a `code` when the query is refused or over a bound */
  tenantQuery(tenantId: string, sql: string): Promise<unknown[]>;
  operatorQuery(sql: string): Promise<unknown[]>;
}

export interface QueryRouteDeps {
  analyst: AnalystQueries;
  /** false on the public listener: the operator's route is not served there */
  operatorRoutes: boolean;
  maxConcurrentPerKey: number;
}

const querySchema = z.object({ sql: z.string().trim().min(1).max(100_000) }).strict();

export function registerQueryRoutes(admin: FastifyInstance, deps: QueryRouteDeps): void {
  const running = new Map<string, number>();

  async function run(keyId: string, reply: FastifyReply, query: () => Promise<unknown[]>) {
    const n = running.get(keyId) ?? 0;
    if (n >= deps.maxConcurrentPerKey) {
      return reply
        .code(429)
        .header('retry-after', '1')
        .send({ error: 'too_many_queries', message: `at most ${deps.maxConcurrentPerKey} queries run at once per key` });
    }
    running.set(keyId, n + 1);
    try {
      return reply.send({ rows: await query() });
    } catch (err) {
      const refused = queryError(err);
      // NOTE: anything else is the engine's or the network's fault: the error handler answers 500
      // (retriable) and logs its code only, never its message (it may quote the SQL).
      if (refused === null) throw err;
      return reply.code(refused.status).send({ error: refused.code, message: refused.message });
    } finally {
      const left = (running.get(keyId) ?? 1) - 1;
      if (left <= 0) running.delete(keyId);
      else running.set(keyId, left);
    }
  }

  admin.post('/v1/admin/tenants/:tenantId/query', { preHandler: requireAccess({ scope: 'read' }) }, async (req, reply) => {
    const tenantId = tenantIdParam(req, reply);
    if (!tenantId) return reply;
    const parsed = querySchema.safeParse(req.body ?? {});
    if (!parsed.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
    return run(req.principal?.keyId ?? 'none', reply, () => deps.analyst.tenantQuery(tenantId, parsed.data.sql));
  });

  if (!deps.operatorRoutes) return;
  admin.post('/v1/admin/query', { preHandler: requireAccess({ operator: true }) }, async (req, reply) => {
    const parsed = querySchema.safeParse(req.body ?? {});
    if (!parsed.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(parsed.error) });
    return run('operator', reply, () => deps.analyst.operatorQuery(parsed.data.sql));
  });
}

/** A refused query (an error with a 4xx `status`, e.g. QueryRejectedError) as its answer; else null. */
function queryError(err: unknown): { status: number; code: string; message: string } | null {
  const e = err as { status?: unknown; code?: unknown; message?: unknown };
  if (!(typeof e?.status === 'number' && e.status >= 400 && e.status < 500)) return null;
  const message = typeof e.message === 'string' ? e.message.slice(0, 2_000) : 'query refused';
  return { status: e.status, code: typeof e.code === 'string' ? e.code : 'query_failed', message };
}
