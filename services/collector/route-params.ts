// Shared answers of the admin routes: the tenant id path parameter and "no such tenant".
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TENANT_ID_RE } from '../../libs/tenants/tenant-store.js';

export function tenantIdParam(req: FastifyRequest, reply: FastifyReply): string | undefined {
  const id = (req.params as { tenantId?: string }).tenantId ?? '';
  if (!TENANT_ID_RE.test(id)) {
    void reply.code(400).send({
      error: 'bad_request',
      message: 'tenantId must be 1-63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit',
    });
    return undefined;
  }
  return id;
}

export function notFound(reply: FastifyReply, tenantId: string) {
  return reply.code(404).send({ error: 'not_found', message: `tenant "${tenantId}" does not exist` });
}
