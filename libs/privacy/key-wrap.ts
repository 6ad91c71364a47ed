// Wrapping of stored pseudonym keys: each key version is a random 256-bit
// key kept only wrapped — AES-256-GCM under a key-encryption key (KEK) derived from the master key,
// with the key's id as associated data, so a wrapped key moved to another id, or altered, does
// not open. Destroying every wrapped copy of a version destroys the version: nothing else,
// the master key included, can recompute it (unlike the HKDF-derived versions of key-ring.ts).
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';

/** HKDF salt of the key-encryption key; a different purpose must use a different salt. */
export const KEK_SALT = 'tracklane/kek';
const KEK_INFO = 'pseudonym-keys:v1';
export const WRAPPED_KEY_BYTES = 32;
/** format byte, 12-byte IV, 16-byte tag, then the wrapped key */
const FORMAT_V1 = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const WRAPPED_LENGTH = 1 + IV_BYTES + TAG_BYTES + WRAPPED_KEY_BYTES;

/** A wrapped key that does not open: altered, under another id, or another master key. Never quotes key material. */
export class KeyUnwrapError extends Error {
  override readonly name = 'KeyUnwrapError';
}

export interface KeyWrapper {
  /** A new random key for `keyId`, wrapped; the clear key is handed to `use` and zeroed afterwards. */
  generate<T>(keyId: string, use: (key: Buffer) => T): { wrapped: Buffer; result: T };
  /** `key` (32 bytes) wrapped for `keyId`: a new random IV each time. */
  wrap(keyId: string, key: Buffer): Buffer;
  /** The clear key of a wrapped one, as a KeyObject (no Buffer left to leak); KeyUnwrapError if it does not open. */
  unwrap(keyId: string, wrapped: Buffer): KeyObject;
}

/**
 * A wrapper over the KEK derived from `masterKey` (≥ 32 bytes, see parseMasterKey). The caller
 * may zero `masterKey` afterwards. TRICKY: like the key ring, it prints as '[KeyWrapper]'.
 */
export function keyWrapper(masterKey: Buffer): KeyWrapper {
  const kekBytes = Buffer.from(hkdfSync('sha256', masterKey, KEK_SALT, KEK_INFO, 32));
  const kek = createSecretKey(kekBytes);
  kekBytes.fill(0);
  const aad = (keyId: string) => Buffer.from(`tracklane/pseudonym-key:${keyId}`, 'utf8');

  function wrap(keyId: string, key: Buffer): Buffer {
    if (key.length !== WRAPPED_KEY_BYTES) throw new RangeError(`a pseudonym key is ${WRAPPED_KEY_BYTES} bytes (got ${key.length})`);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(keyId));
    const body = Buffer.concat([cipher.update(key), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_V1]), iv, cipher.getAuthTag(), body]);
  }

  function unwrap(keyId: string, wrapped: Buffer): KeyObject {
    if (wrapped.length !== WRAPPED_LENGTH || wrapped[0] !== FORMAT_V1) throw new KeyUnwrapError(`wrapped key for ${keyId} is not in the v1 format`);
    const iv = wrapped.subarray(1, 1 + IV_BYTES);
    const tag = wrapped.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(keyId));
    decipher.setAuthTag(tag);
    let clear: Buffer;
    try {
      clear = Buffer.concat([decipher.update(wrapped.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch {
      throw new KeyUnwrapError(`wrapped key for ${keyId} does not open (altered, moved to another id, or wrapped under another master key)`);
    }
    try {
      return createSecretKey(clear);
    } finally {
      clear.fill(0);
    }
  }

  const wrapper: KeyWrapper = {
    generate(keyId, use) {
      const key = randomBytes(WRAPPED_KEY_BYTES);
      try {
        return { wrapped: wrap(keyId, key), result: use(key) };
      } finally {
        key.fill(0);
      }
    },
    wrap,
    unwrap,
  };
  Object.defineProperties(wrapper, {
    toJSON: { value: () => '[KeyWrapper]' },
    toString: { value: () => '[KeyWrapper]' },
    [inspect.custom]: { value: () => '[KeyWrapper]' },
  });
  return wrapper;
}
