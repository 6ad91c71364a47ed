// Overwrite and erasure commands on the overwrites topic hold no clear id or value (issue 12,
// item 6): the record's key is the keyed subject hash (libs/privacy/subject-hash.ts), its `id`
// and `set` (and an erasure's `replacement_id`) travel sealed with AES-256-GCM under a key derived from TRACKLANE_ID_HASH_KEY,
// which the collector (writer) and the compactor (reader) both hold. The clear fields left
// (request id, tenant, subject kind, mode, flags, request time) are bound to the ciphertext as
// associated data, so a record cannot be altered or spliced from another without failing to
// open. A record without `sealed` is refused like one that does not open.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { LIMITS } from '../events/envelope.js';
import { overwriteCommandSchema, type OverwriteCommand } from '../events/overwrite-command.js';
import type { OverwriteRecord } from '../kafka/record-types.js';
import { ConfigError } from '../config/env.js';
import { MasterKeyError } from '../anonymize/master-key.js';
import { ID_HASH_KEY_VARIABLE, parseIdHashKey, type SubjectHash } from '../privacy/subject-hash.js';

/** HKDF `info`: this key is for nothing else (the subject hash uses the key itself, under HMAC). */
export const OVERWRITE_CIPHER_INFO = 'tracklane overwrite records: AES-256-GCM v1';
const FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** why a record did not open: the label of tracklane_compactor_rejected_commands_total */
export type RejectReason = 'not_sealed' | 'clear_fields' | 'truncated' | 'unknown_format' | 'not_authentic' | 'malformed';
export type OpenResult = { ok: true; value: OverwriteCommand } | { ok: false; error: string; reason: RejectReason };

export interface OverwriteCipher {
  seal(cmd: OverwriteCommand): OverwriteRecord;
  /** a record that does not open is an expected outcome (its reason names no value): the caller dead-letters it */
  open(record: OverwriteRecord): OpenResult;
}

// NOTE: replacement_id was added later (replaceId): a record sealed before has none
const sealedPayloadSchema = z.object({
  id: z.string().min(1).max(LIMITS.idChars),
  set: z.record(z.string(), z.string().nullable()),
  replacement_id: z.string().min(1).max(LIMITS.idChars).optional(),
}).strict();

const rejected = (reason: RejectReason, error: string): OpenResult => ({ ok: false, error, reason });

/** The clear fields, in a fixed order: what the tag authenticates besides the ciphertext. */
function associatedData(r: Omit<OverwriteCommand, 'id' | 'set' | 'replacement_id'>): Buffer {
  return Buffer.from(
    JSON.stringify([FORMAT_V1, r.request_id, r.tenant_id, r.subject, r.mode, r.delete_events, r.suppress, r.requested_at, r.insert_missing]),
    'utf8',
  );
}

/** A cipher over a key derived from `idHashKey` (the caller may zero its own copy). */
export function createOverwriteCipher(idHashKey: Buffer): OverwriteCipher {
  const key = Buffer.from(hkdfSync('sha256', idHashKey, Buffer.alloc(0), OVERWRITE_CIPHER_INFO, 32));
  return {
    seal(cmd) {
      const { id, set, replacement_id, ...clear } = cmd;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(associatedData(clear));
      const inner = replacement_id === undefined ? { id, set } : { id, set, replacement_id };
      const body = Buffer.concat([cipher.update(JSON.stringify(inner), 'utf8'), cipher.final()]);
      return { ...clear, id: '', set: {}, sealed: Buffer.concat([Buffer.from([FORMAT_V1]), iv, body, cipher.getAuthTag()]) };
    },
    open(record) {
      const { sealed, id: clearId, set: clearSet, ...clear } = record;
      // TRICKY: refused, never taken as it is: anyone who may produce to the topic could forge an
      // overwrite or an erasure without the key (no collector ever shipped writing these)
      if (sealed === null) return rejected('not_sealed', 'overwrite record is not sealed');
      if (clearId !== '' || Object.keys(clearSet).length > 0) return rejected('clear_fields', 'sealed overwrite record also carries a clear id or set');
      if (sealed.length < 1 + IV_BYTES + TAG_BYTES) return rejected('truncated', `sealed overwrite record is truncated (${sealed.length} bytes)`);
      if (sealed[0] !== FORMAT_V1) return rejected('unknown_format', `sealed overwrite record has unknown format ${sealed[0] ?? -1}`);
      const iv = sealed.subarray(1, 1 + IV_BYTES);
      const tag = sealed.subarray(sealed.length - TAG_BYTES);
      const body = sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES);
      let plain: Buffer;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(associatedData(clear));
        decipher.setAuthTag(tag);
        plain = Buffer.concat([decipher.update(body), decipher.final()]);
      } catch {
        return rejected('not_authentic', 'sealed overwrite record does not authenticate (altered, or sealed under another TRACKLANE_ID_HASH_KEY)');
      }
      let payload: unknown;
      try {
        payload = JSON.parse(plain.toString('utf8'));
      } catch {
        return rejected('malformed', 'sealed overwrite record holds no JSON');
      }
      const inner = sealedPayloadSchema.safeParse(payload);
      if (!inner.success) return rejected('malformed', 'sealed overwrite record holds no id and set');
      const cmd = overwriteCommandSchema.safeParse({ ...clear, ...inner.data });
      if (!cmd.success) return rejected('malformed', `opened overwrite record is invalid: ${cmd.error.issues[0]?.path.join('.') ?? 'rejected'}`);
      return { ok: true, value: cmd.data };
    },
  };
}

// NOTE: the request ids the collector writes (`<uuid>` or `<uuid>/<n>`); anything else in a
// rejected record's clear field is not logged (a forger chooses it)
const REQUEST_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\/\d{1,6})?$/;

/**
 * The cipher with its refusals made visible (the compactor's): a record that does not open (or
 * is unsealed) is still the caller's to dead-letter, and is also logged — one error line with
 * its request id and reason, never its id or values — and counted in
 * tracklane_compactor_rejected_commands_total{reason}. TRICKY: its receipt is left as it is: the
 * request id of a record that does not authenticate is the sender's claim, and failing it would
 * let a forger fail other callers' requests (a genuine one left pending expires in time).
 */
export function reportRejections(cipher: OverwriteCipher, opts: { logger: { error(obj: object, msg: string): void }; registry: Registry }): OverwriteCipher {
  const counter = new Counter({
    name: 'tracklane_compactor_rejected_commands_total',
    help: 'overwrite records dead-lettered because they are unsealed or do not open, by reason',
    labelNames: ['reason'],
    registers: [opts.registry],
  });
  return {
    seal: (cmd) => cipher.seal(cmd),
    open(record) {
      const res = cipher.open(record);
      if (!res.ok) {
        counter.inc({ reason: res.reason });
        opts.logger.error(
          { requestId: REQUEST_ID_RE.test(record.request_id) ? record.request_id : null, reason: res.reason, error: res.error },
          'overwrite record rejected: dead-lettered, its receipt left as it is',
        );
      }
      return res;
    },
  };
}

/** The cipher of a fleet service from TRACKLANE_ID_HASH_KEY; a ConfigError (never quoting the key) without one. */
export function fleetOverwriteCipher(config: { TRACKLANE_ID_HASH_KEY?: string | undefined }): OverwriteCipher {
  if (!config.TRACKLANE_ID_HASH_KEY) throw new ConfigError(`${ID_HASH_KEY_VARIABLE} is required: overwrite records are sealed under a key derived from it`);
  let key: Buffer;
  try {
    key = parseIdHashKey(config.TRACKLANE_ID_HASH_KEY);
  } catch (err) {
    throw err instanceof MasterKeyError ? new ConfigError(err.message) : err;
  }
  const cipher = createOverwriteCipher(key);
  key.fill(0);
  return cipher;
}

/**
 * The Kafka messages of commands: keyed by the subject hash, never the clear id (NOTE: the topic
 * has one partition, so the key orders nothing), values sealed, then encoded by `encode` (the
 * record codec).
 */
export function overwriteMessages(
  commands: readonly OverwriteCommand[],
  cipher: OverwriteCipher,
  subjectHash: SubjectHash,
  encode: (r: OverwriteRecord) => Buffer,
): { key: string; value: Buffer }[] {
  return commands.map((c) => ({ key: subjectHash(c.tenant_id, c.id), value: encode(cipher.seal(c)) }));
}
