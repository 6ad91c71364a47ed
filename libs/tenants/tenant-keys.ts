// A tenant's credentials (DESIGN.md §8): write keys (ingest only, several so they can be
// rotated) and API keys with scopes (`read`: the tenant's SQL and receipts; `admin`: its flags,
// overwrites, erasures, loads, receipts and keys). Secrets are shown once at creation and kept
// only as sha256 hashes: a key is 192 random bits, so a fast hash is as good as a slow one.
// Pure functions over the key list; the tenant stores persist and index the result.
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

export const WRITE_KEY_PREFIX = 'tl_';
/** Generated keys are `tl_` + 32 base64url chars (24 random bytes); any base64url body ≥ 16 chars loads. */
export const WRITE_KEY_RE = /^tl_[A-Za-z0-9_-]{16,128}$/;
export const API_KEY_PREFIX = 'tlk_';
export const API_KEY_RE = /^tlk_[A-Za-z0-9_-]{32}$/;
export const KEY_ID_RE = /^(wk|ak)_[0-9a-f]{16}$/;

export const SCOPES = ['read', 'admin'] as const;
export const scopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof scopeSchema>;

/** Bounds on what one tenant may hold: every list here is loaded into every replica's memory. */
export const MAX_WRITE_KEYS = 10;
export const MAX_API_KEYS = 50;
export const MAX_KEY_NAME_CHARS = 64;

const hashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 hex digest');

export const writeKeyEntrySchema = z.object({
  keyId: z.string().regex(KEY_ID_RE),
  hash: hashSchema,
  createdAt: z.number().int(),
});
export type WriteKeyEntry = z.infer<typeof writeKeyEntrySchema>;

export const keyNameSchema = z
  .string()
  .trim()
  .min(1, 'name must not be empty')
  .max(MAX_KEY_NAME_CHARS, `name must be at most ${MAX_KEY_NAME_CHARS} characters`)
  .regex(/^[\p{L}\p{N} ._:@/-]+$/u, 'name may hold letters, digits, spaces and . _ : @ / -');

export const apiKeyEntrySchema = z.object({
  keyId: z.string().regex(KEY_ID_RE),
  name: keyNameSchema,
  scopes: z.array(scopeSchema).min(1).max(SCOPES.length),
  hash: hashSchema,
  createdAt: z.number().int(),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

export const tenantKeysSchema = z.object({
  writeKeys: z.array(writeKeyEntrySchema).max(MAX_WRITE_KEYS),
  apiKeys: z.array(apiKeyEntrySchema).max(MAX_API_KEYS),
});
export type TenantKeys = z.infer<typeof tenantKeysSchema>;


/** What an admin may ask for when creating an API key. */
export const apiKeyRequestSchema = z
  .object({
    name: keyNameSchema,
    scopes: z
      .array(scopeSchema)
      .min(1, 'scopes must name at least one of "read", "admin"')
      .max(8)
      .transform((s) => SCOPES.filter((x) => s.includes(x))),
  })
  .strict();
export type ApiKeyRequest = z.infer<typeof apiKeyRequestSchema>;

export class KeyLimitError extends Error {
  override readonly name = 'KeyLimitError';
}

export function keyHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** `tl_` + 24 random bytes as base64url (192 bits). */
export function generateWriteKey(): string {
  return WRITE_KEY_PREFIX + randomBytes(24).toString('base64url');
}

/** `tlk_` + 24 random bytes as base64url (192 bits). */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(24).toString('base64url');
}

export function newKeyId(kind: 'wk' | 'ak'): string {
  return `${kind}_${randomBytes(8).toString('hex')}`;
}

/** The stored entry of a new write key: a new id and the secret's hash, never the secret. */
export function writeKeyEntry(secret: string, createdAt: number): WriteKeyEntry {
  return { keyId: newKeyId('wk'), hash: keyHash(secret), createdAt };
}

/** The stored entry of a new API key: a new id, its name and scopes, the secret's hash. */
export function apiKeyEntry(secret: string, request: ApiKeyRequest, createdAt: number): ApiKeyEntry {
  return { keyId: newKeyId('ak'), name: request.name, scopes: [...request.scopes], hash: keyHash(secret), createdAt };
}

/**
 * The key id of a write key stored without one (a record holding a single `writeKeyHash`): derived from its
 * hash, so every replica and every restart names it alike without a write.
 */
export function legacyWriteKeyId(hash: string): string {
  return `wk_${createHash('sha256').update(`legacy:${hash}`).digest('hex').slice(0, 16)}`;
}

export function addWriteKey(keys: TenantKeys, entry: WriteKeyEntry): TenantKeys {
  if (keys.writeKeys.length >= MAX_WRITE_KEYS) {
    throw new KeyLimitError(`a tenant holds at most ${MAX_WRITE_KEYS} write keys; revoke one first`);
  }
  return { ...keys, writeKeys: [...keys.writeKeys, entry] };
}

export function addApiKey(keys: TenantKeys, entry: ApiKeyEntry): TenantKeys {
  if (keys.apiKeys.length >= MAX_API_KEYS) {
    throw new KeyLimitError(`a tenant holds at most ${MAX_API_KEYS} API keys; revoke one first`);
  }
  return { ...keys, apiKeys: [...keys.apiKeys, entry] };
}

/** The keys without `keyId` (of either kind), or undefined when the tenant has no such key. */
export function removeKey(keys: TenantKeys, keyId: string): TenantKeys | undefined {
  const writeKeys = keys.writeKeys.filter((k) => k.keyId !== keyId);
  const apiKeys = keys.apiKeys.filter((k) => k.keyId !== keyId);
  if (writeKeys.length === keys.writeKeys.length && apiKeys.length === keys.apiKeys.length) return undefined;
  return { writeKeys, apiKeys };
}

/** A key entry as the API lists it: never the hash. */
export function describeApiKey(k: ApiKeyEntry): { keyId: string; name: string; scopes: Scope[]; createdAt: string } {
  return { keyId: k.keyId, name: k.name, scopes: [...k.scopes], createdAt: new Date(k.createdAt).toISOString() };
}

export function freezeKeys(keys: TenantKeys): TenantKeys {
  return Object.freeze({
    writeKeys: Object.freeze(keys.writeKeys.map((k) => Object.freeze({ ...k }))) as WriteKeyEntry[],
    apiKeys: Object.freeze(keys.apiKeys.map((k) => Object.freeze({ ...k, scopes: Object.freeze([...k.scopes]) as Scope[] }))) as ApiKeyEntry[],
  });
}

export const EMPTY_KEYS: TenantKeys = freezeKeys({ writeKeys: [], apiKeys: [] });
