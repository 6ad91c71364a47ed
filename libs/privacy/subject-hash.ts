// How a subject (user or account) id is kept once its request is accepted: never in clear,
// as HMAC-SHA256(TRACKLANE_ID_HASH_KEY, tenant ‖ id) in receipts (`overwrite_requests`), the
// overwrite registry (`overwrite_values`) and `suppressions`. A plain SHA-256 of an id that is an
// email would give the erased person's address back to anyone with a list of addresses and
// read access to those tables (the analyst query API has it); without the key it cannot.
// Every process that hashes — collector (pending receipts), sinks (registry and suppression
// lookups), compactor — must use the same key: sinks never hold the master key, so this is a
// secret of its own.
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIN_MASTER_KEY_BYTES, parseSecretKey } from '../anonymize/master-key.js';

export type SubjectHash = (tenantId: string, id: string) => string;

export const ID_HASH_KEY_VARIABLE = 'TRACKLANE_ID_HASH_KEY';

/** A hasher over a copy of `key` (the caller may zero its own). */
export function subjectHasher(key: Buffer): SubjectHash {
  if (key.length < MIN_MASTER_KEY_BYTES) throw new Error(`the id hash key must be at least ${MIN_MASTER_KEY_BYTES} bytes`);
  const own = Buffer.from(key);
  return (tenantId, id) => createHmac('sha256', own).update(tenantId).update('\u0000').update(id).digest('hex');
}

/** TRACKLANE_ID_HASH_KEY as given (base64:…, hex:… or raw, ≥ 32 bytes); errors never quote it. */
export function parseIdHashKey(raw: string | undefined): Buffer {
  return parseSecretKey(raw, ID_HASH_KEY_VARIABLE);
}

export const ID_HASH_KEY_FILE = 'id-hash.key';

/**
 * Embedded mode without TRACKLANE_ID_HASH_KEY: a random key kept in the data dir (mode 0600),
 * created on first start — the same key for as long as the data it hashed is kept.
 */
export function dataDirIdHashKey(dataDir: string): Buffer {
  const file = join(dataDir, ID_HASH_KEY_FILE);
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `hex:${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return parseSecretKey(readFileSync(file, 'utf8').trim(), `${ID_HASH_KEY_FILE} in the data dir`);
}
