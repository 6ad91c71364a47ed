// Stored pseudonym keys of a fleet for tests and tools: a key ring over the keys a keeper wrote to
// Redis (to check what the anonymizers stored), and a keeper pass where no compactor runs.
import { Redis } from 'ioredis';
import { createKeyRing, type KeyRing } from '../../libs/anonymize/key-ring.js';
import { parseMasterKey } from '../../libs/anonymize/master-key.js';
import type { Logger } from '../../libs/core/logger.js';
import { createKeyKeeper } from '../../libs/privacy/key-keeper.js';
import { redisKeyHash, redisKeyStore } from '../../libs/privacy/key-stores.js';
import type { TenantFlags } from '../../libs/tenants/flags.js';
import { keyWrapper } from '../../libs/privacy/key-wrap.js';
import { keyId } from '../../libs/privacy/key-versions.js';
import { createStoredKeys } from '../../libs/privacy/stored-keys.js';

export async function storedKeyRing(redis: Redis, redisPrefix: string, masterKey: string | undefined, tenantIds: readonly string[]): Promise<KeyRing> {
  const master = parseMasterKey(masterKey);
  const wrapper = keyWrapper(master);
  const keys = createStoredKeys();
  for (const t of tenantIds) {
    for (const [field, b64] of Object.entries(await redis.hgetall(redisKeyHash(redisPrefix, t)))) {
      const version = Number(field.slice(1));
      keys.set(t, version, wrapper.unwrap(keyId(t, version), Buffer.from(b64, 'base64')));
    }
  }
  return createKeyRing(master, { keys: { resolve: (t, v) => keys.get(t, v) ?? 'missing' } });
}

/**
 * What a fleet's compactor does for tools that run no compactor (the fleet bench, the fault
 * harness): one key keeper pass over `tenants`, writing their stored keys to Redis.
 */
export async function makeStoredKeys(opts: { redisUrl: string; redisPrefix: string; masterKey: string; tenants: () => readonly { tenantId: string; flags: TenantFlags }[]; logger: Logger }): Promise<void> {
  const redis = new Redis(opts.redisUrl);
  try {
    const keeper = createKeyKeeper({ wrapper: keyWrapper(parseMasterKey(opts.masterKey)), primary: redisKeyStore(redis, opts.redisPrefix), keys: createStoredKeys(), tenants: opts.tenants, outsideCopies: [], logger: opts.logger });
    await keeper.sync();
  } finally {
    redis.disconnect();
  }
}
