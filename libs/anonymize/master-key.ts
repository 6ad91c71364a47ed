// Parses TRACKLANE_MASTER_KEY, the secret every tenant pseudonym key is derived from (DESIGN.md §3).
// Errors describe what is wrong with the value without ever quoting it.

/** Minimum decoded length: HMAC-SHA256 / HKDF-SHA256 security level. */
export const MIN_MASTER_KEY_BYTES = 32;

/**
 * A master key that cannot be used. The message names the variable and the problem only:
 * TRICKY: it must never contain the key or any slice of it (messages end up in logs and crash reports).
 */
export class MasterKeyError extends Error {
  override readonly name = 'MasterKeyError';
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Decodes the master key:
 * - `base64:<b64>` (standard or url-safe alphabet, padding optional),
 * - `hex:<hex>`,
 * - anything else: the utf8 bytes of the string as given (no trimming: bytes are bytes).
 * Surrounding whitespace is ignored after the `base64:`/`hex:` prefixes only, since it can never be part of
 * those encodings. The result must be at least {@link MIN_MASTER_KEY_BYTES} bytes.
 */
export function parseMasterKey(raw: string | undefined): Buffer {
  return parseSecretKey(raw, 'TRACKLANE_MASTER_KEY');
}

/** The same encodings and minimum length for another secret key, errors naming `variable`. */
export function parseSecretKey(raw: string | undefined, variable: string): Buffer {
  if (raw === undefined || raw === '') {
    throw new MasterKeyError(`${variable} is not set`);
  }
  let key: Buffer;
  if (raw.startsWith('base64:')) {
    const body = raw.slice('base64:'.length).trim();
    // NOTE: Buffer.from(…, 'base64') silently skips invalid characters; validate first so a
    // mangled key (e.g. shell-quoted) is rejected instead of yielding a different, shorter key.
    if (BASE64_RE.test(body)) key = Buffer.from(body, 'base64');
    else if (BASE64URL_RE.test(body)) key = Buffer.from(body, 'base64url');
    else throw new MasterKeyError(`${variable} has the base64: prefix but is not valid base64`);
  } else if (raw.startsWith('hex:')) {
    const body = raw.slice('hex:'.length).trim();
    if (!HEX_RE.test(body)) {
      throw new MasterKeyError(`${variable} has the hex: prefix but is not valid hex (even number of 0-9a-f digits)`);
    }
    key = Buffer.from(body, 'hex');
  } else {
    key = Buffer.from(raw, 'utf8');
  }
  if (key.length < MIN_MASTER_KEY_BYTES) {
    const got = key.length;
    key.fill(0);
    throw new MasterKeyError(`${variable} must be at least ${MIN_MASTER_KEY_BYTES} bytes (got ${got})`);
  }
  return key;
}
