// Admin routes for retroactive overwrites and erasures (issue 4): they validate, turn the body
// into overwrite commands, hand them to the runner's queue and answer 202 with a request id;
// the receipt route reports what the compactor did. Values never appear in a response or log.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LIMITS } from '../../libs/events/envelope.js';
import { describeIssues } from '../../libs/events/segment-message.js';
import { NO_COMPACTOR_WARNING } from '../compactor/compactor-presence.js';
import type { RequestReceipt } from '../../libs/compactor/receipts.js';
import type { OverwriteCommand, OverwriteSubject } from '../../libs/events/overwrite-command.js';
import { TENANT_ID_RE, type TenantStore } from '../../libs/tenants/tenant-store.js';
import { requireAccess } from './admin-auth.js';

export interface OverwriteDeps {
  tenants: TenantStore;
  /** queues commands for the compactor; resolves once they are durably queued */
  submit: (commands: OverwriteCommand[]) => Promise<void>;
  /**
   * the request's receipt, undefined when unknown; `mayRead` says whether the caller may see a
   * tenant's requests: asked before anything is written for the request (the fleet fails its
   * expired pending commands on read: receipts.ts requestReceipt)
   */
  receipt: (requestId: string, mayRead: (tenantId: string) => boolean) => Promise<RequestReceipt | undefined>;
  /** which of these ids have a stored row (Data Loader: the others are reported missing) */
  storedIds: (tenantId: string, subject: OverwriteSubject, ids: string[]) => Promise<Set<string>>;
  /** the fleet: whether a compactor runs (null: unknown); accepted requests say when none does */
  compactorSeen?: () => Promise<boolean | null>;
  /** the keyed hash of receipts (libs/privacy/subject-hash.ts): how the audit log names a subject */
  subjectHash?: (tenantId: string, id: string) => string;
  now?: () => number;
}

const idSchema = z.string().trim().min(1).max(LIMITS.idChars);
const setSchema = z
  .record(z.string().min(1).max(LIMITS.mapKeyChars), z.union([z.string().max(LIMITS.mapValueChars), z.null()]))
  .refine((s) => Object.keys(s).length > 0, 'set must name at least one attribute')
  .refine((s) => Object.keys(s).length <= LIMITS.mapEntries, `set may name at most ${LIMITS.mapEntries} attributes`);
const patchSchema = z.object({ set: setSchema }).strict();
const erasureSchema = z
  .object({
    userIds: z.array(idSchema).min(1).max(10_000),
    mode: z.enum(['anonymize', 'delete']),
    deleteEvents: z.boolean().default(false),
    suppress: z.boolean().default(false),
    /** the kept history takes a random id instead of the user's (default: for delete without deleteEvents) */
    replaceId: z.boolean().optional(),
  })
  .strict()
  .refine((e) => !e.deleteEvents || e.mode === 'delete', { message: 'deleteEvents needs mode "delete"', path: ['deleteEvents'] })
  .refine((e) => !(e.replaceId === true && e.deleteEvents), { message: 'replaceId keeps the events under a new id: it cannot go with deleteEvents', path: ['replaceId'] });

/**
 * A replaced user's new id: random, so nothing computes it from the old one (unlike a
 * pseudonym); one per user of the request, carried by its command until it is verified.
 */
export const newSubjectId = (): string => `anon-${randomUUID()}`;

/** rows per Data Loader call: one request, one receipt; the loader sends a file in chunks */
export const MAX_LOAD_ROWS = 5_000;
/** body limit of a Data Loader call (uncompressed); the loader splits chunks by bytes too */
export const MAX_LOAD_BYTES = 16 * 1024 * 1024;
const loadSchema = z
  .object({
    subject: z.enum(['user', 'account']),
    rows: z.array(z.unknown()).min(1).max(MAX_LOAD_ROWS),
    insertMissing: z.boolean().default(false),
    dryRun: z.boolean().default(false),
  })
  .strict();
const loadRowSchema = z.object({ id: idSchema, set: setSchema }).strict();

export function registerOverwriteRoutes(admin: FastifyInstance, deps: OverwriteDeps): void {
  const now = deps.now ?? Date.now;
  const asAdmin = requireAccess({ scope: 'admin' });
  /** a body of an accepted (or still pending) request, with a warning when no compactor runs */
  const queued = async <T extends object>(body: T): Promise<T | (T & { warning: string })> =>
    deps.compactorSeen && (await deps.compactorSeen()) === false ? { ...body, warning: NO_COMPACTOR_WARNING } : body;

  const base = (tenantId: string, requestId: string, at: number) => ({
    tenant_id: tenantId,
    delete_events: false,
    suppress: false,
    insert_missing: null,
    requested_at: at,
    request_id: requestId,
  });

  for (const subject of ['user', 'account'] as const) {
    admin.patch(`/v1/admin/tenants/:tenantId/${subject}s/:id`, { preHandler: asAdmin, config: { audit: `overwrite.${subject}` } }, async (req, reply) => {
      const { tenantId, id } = req.params as { tenantId: string; id: string };
      if (!knownTenant(deps.tenants, tenantId)) return reply.code(404).send({ error: 'not_found', message: `tenant "${tenantId}" does not exist` });
      const parsedId = idSchema.safeParse(id);
      const body = patchSchema.safeParse(req.body ?? {});
      if (!parsedId.success || !body.success) {
        return reply.code(400).send({ error: 'bad_request', message: parsedId.success ? describeIssues(body.error as z.ZodError) : `${subject} id: 1–128 characters` });
      }
      const requestId = randomUUID();
      req.auditDetails = { requestId, attributes: Object.keys(body.data.set).length.toString(), ...(deps.subjectHash ? { subjectIdHash: deps.subjectHash(tenantId, parsedId.data) } : {}) };
      await deps.submit([{ ...base(tenantId, requestId, now()), subject, id: parsedId.data, set: body.data.set, mode: 'overwrite' }]);
      return reply.code(202).send(await queued({ requestId }));
    });
  }

  admin.post('/v1/admin/tenants/:tenantId/erasures', { preHandler: asAdmin, config: { audit: 'erasure.create' } }, async (req, reply) => {
    const { tenantId } = req.params as { tenantId: string };
    if (!knownTenant(deps.tenants, tenantId)) return reply.code(404).send({ error: 'not_found', message: `tenant "${tenantId}" does not exist` });
    const body = erasureSchema.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(body.error) });
    const requestId = randomUUID();
    const at = now();
    const replaceId = body.data.replaceId ?? (body.data.mode === 'delete' && !body.data.deleteEvents);
    // NOTE: one command per user, `<requestId>/<n>`: receipts are per command, the request's is their sum.
    const commands: OverwriteCommand[] = [...new Set(body.data.userIds)].map((userId, n) => ({
      ...base(tenantId, `${requestId}/${n}`, at),
      subject: 'user',
      id: userId,
      set: {},
      mode: body.data.mode,
      delete_events: body.data.deleteEvents,
      suppress: body.data.suppress,
      ...(replaceId ? { replacement_id: newSubjectId() } : {}),
    }));
    req.auditDetails = {
      requestId,
      mode: body.data.mode,
      users: String(commands.length),
      deleteEvents: String(body.data.deleteEvents),
      suppress: String(body.data.suppress),
      replaceId: String(replaceId),
    };
    await deps.submit(commands);
    return reply.code(202).send(await queued({ requestId, users: commands.length, replaceId }));
  });

  // The Data Loader's bulk route: rows are validated one by one — a bad row is reported by its
  // index and skipped, the others go on (DESIGN.md: bad input loses nothing). Errors name the
  // attribute, never a value.
  admin.post('/v1/admin/tenants/:tenantId/loads', { bodyLimit: MAX_LOAD_BYTES, preHandler: asAdmin, config: { audit: 'load.create' } }, async (req, reply) => {
    const { tenantId } = req.params as { tenantId: string };
    if (!knownTenant(deps.tenants, tenantId)) return reply.code(404).send({ error: 'not_found', message: `tenant "${tenantId}" does not exist` });
    const body = loadSchema.safeParse(req.body ?? {});
    if (!body.success) return reply.code(400).send({ error: 'bad_request', message: describeIssues(body.error) });
    const { subject, insertMissing, dryRun } = body.data;
    const rejected: { index: number; reason: string }[] = [];
    const good: { index: number; id: string; set: Record<string, string | null> }[] = [];
    body.data.rows.forEach((raw, index) => {
      const row = loadRowSchema.safeParse(raw);
      if (row.success) good.push({ index, ...row.data });
      else rejected.push({ index, reason: describeIssues(row.error) });
    });
    const stored = good.length > 0 ? await deps.storedIds(tenantId, subject, [...new Set(good.map((g) => g.id))]) : new Set<string>();
    const missing = good.filter((g) => !stored.has(g.id)).length;
    req.auditDetails = { subject, rows: String(body.data.rows.length), accepted: String(good.length), rejected: String(rejected.length), dryRun: String(dryRun) };
    if (dryRun || good.length === 0) {
      return reply.code(dryRun ? 200 : 202).send({ requestId: null, accepted: good.length, rejected, missing });
    }
    const requestId = randomUUID();
    req.auditDetails = { ...req.auditDetails, requestId };
    const at = now();
    await deps.submit(
      good.map((g) => ({
        ...base(tenantId, `${requestId}/${g.index}`, at),
        subject,
        id: g.id,
        set: g.set,
        mode: 'overwrite',
        insert_missing: insertMissing,
      })),
    );
    return reply.code(202).send(await queued({ requestId, accepted: good.length, rejected, missing }));
  });

  // NOTE: a tenant key (read or admin) sees its own tenant's requests; another's answer as unknown.
  admin.get('/v1/admin/requests/:requestId', { preHandler: requireAccess({ scope: 'any' }) }, async (req, reply) => {
    const { requestId } = req.params as { requestId: string };
    if (!/^[0-9a-f-]{36}$/.test(requestId)) return reply.code(400).send({ error: 'bad_request', message: 'requestId must be a UUID' });
    const principal = req.principal;
    const mayRead = (tenantId: string) => principal?.kind === 'operator' || (principal?.kind === 'api_key' && principal.tenantId === tenantId);
    const receipt = await deps.receipt(requestId, mayRead);
    // NOTE: checked again here: an embedded receipt() need not ask (it writes nothing on read)
    if (!receipt || !mayRead(receipt.tenantId)) return reply.code(404).send({ error: 'not_found', message: `request ${requestId} is unknown` });
    // NOTE: history under a shredded key version cannot be found by the request (nor by anyone): said, not failed
    const shredded = deps.tenants.get(receipt.tenantId)?.shreddedKeyVersions ?? [];
    const answer = shredded.length > 0 ? { ...receipt, shreddedKeyVersions: shredded } : receipt;
    return reply.send(receipt.status === 'pending' ? await queued(answer) : answer);
  });
}

function knownTenant(tenants: TenantStore, tenantId: string): boolean {
  return TENANT_ID_RE.test(tenantId) && tenants.getTenant(tenantId) !== undefined;
}
