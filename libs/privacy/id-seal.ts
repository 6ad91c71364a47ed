// The new id an erasure gives a subject (replaceId, issue 15 item 3) travels to the sinks sealed:
// AES-256-GCM under a key derived from TRACKLANE_ID_HASH_KEY (which the compactor, the writer,
// and every sink, the readers, hold), bound to its request, tenant and subject hash as associated
// data, so a row cannot be moved to another subject. ClickHouse (`replaced_ids`) holds only the
// ciphertext, and only until the request is verified.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** HKDF `info`: this key is for nothing else (the subject hash and the overwrite records have their own). */
export const ID_SEAL_INFO = 'tracklane replaced ids: AES-256-GCM v1';
const FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** what a sealed id is bound to */
export interface SealedIdOwner {
  request_id: string;
  tenant_id: string;
  id_hash: string;
}

export interface IdSeal {
  /** base64 of format ‖ iv ‖ ciphertext ‖ tag */
  seal(newId: string, owner: SealedIdOwner): string;
  /** the new id, or null when `sealed` does not open for this owner (altered, moved, another key) */
  open(sealed: string, owner: SealedIdOwner): string | null;
}

const aad = (o: SealedIdOwner): Buffer => Buffer.from(JSON.stringify([FORMAT_V1, o.request_id, o.tenant_id, o.id_hash]), 'utf8');

/** A seal over a key derived from `idHashKey` (the caller may zero its own copy). */
export function createIdSeal(idHashKey: Buffer): IdSeal {
  const key = Buffer.from(hkdfSync('sha256', idHashKey, Buffer.alloc(0), ID_SEAL_INFO, 32));
  return {
    seal(newId, owner) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(owner));
      const body = Buffer.concat([cipher.update(newId, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([FORMAT_V1]), iv, body, cipher.getAuthTag()]).toString('base64');
    },
    open(sealed, owner) {
      const bytes = Buffer.from(sealed, 'base64');
      if (bytes.length <= 1 + IV_BYTES + TAG_BYTES || bytes[0] !== FORMAT_V1) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(1, 1 + IV_BYTES));
        decipher.setAAD(aad(owner));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        return Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        return null;
      }
    },
  };
}
