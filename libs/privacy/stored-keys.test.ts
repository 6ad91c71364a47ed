import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/poll.js';
import { createLogger } from '../core/logger.js';
import { createMemoryKeyStore } from './key-stores.js';
import { keyWrapper } from './key-wrap.js';
import { keyId } from './key-versions.js';
import { createStoredKeys, KEY_LOAD_RETRY_MS } from './stored-keys.js';

const logger = createLogger({ level: 'silent' });

describe('stored keys', () => {
  it('a key not held is loaded in the background; a missing one is asked again only after the retry delay', async () => {
    const wrapper = keyWrapper(randomBytes(32));
    const store = createMemoryKeyStore('redis');
    let reads = 0;
    const counting = { ...store, get: (t: string, v: number) => ((reads += 1), store.get(t, v)) };
    let clock = 0;
    const keys = createStoredKeys({ wrapper, store: counting, logger, now: () => clock });
    expect(keys.get('acme', 1)).toBeUndefined();
    await eventually(() => reads === 1, 1_000, 'first load');
    await new Promise((r) => setTimeout(r, 10));
    keys.get('acme', 1);
    expect(reads).toBe(1);
    await store.putIfAbsent('acme', 1, wrapper.generate(keyId('acme', 1), () => undefined).wrapped);
    clock += KEY_LOAD_RETRY_MS + 1;
    keys.get('acme', 1);
    await eventually(() => keys.get('acme', 1) !== undefined, 1_000, 'loaded');
    keys.forget('acme', 1);
    expect(keys.get('acme', 1)).toBeUndefined();
  });
});
