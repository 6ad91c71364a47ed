// The bundle as served: size budget, syntax every target browser parses, no console calls.
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildTagBundle, cachedTagBundle, type TagBundle } from './build-tag.js';

const GZIP_BUDGET_BYTES = 10 * 1024;

describe('buildTagBundle', () => {
  let bundle: TagBundle;

  it('builds one minified IIFE', async () => {
    bundle = await buildTagBundle();
    const code = bundle.code.toString('utf8');
    expect(code).toMatch(/^("use strict";)?\(\(\)=>\{/);
    expect(bundle.etag).toBe(`W/"${bundle.hash}"`);
    expect(gunzipSync(bundle.gzip).equals(bundle.code)).toBe(true);
  });

  it(`is at most ${GZIP_BUDGET_BYTES} bytes gzipped`, () => {
    expect(bundle.gzip.length).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
  });

  it('writes nothing to the console and uses no regex lookbehind (Safari < 16.4)', () => {
    const code = bundle.code.toString('utf8');
    expect(code).not.toMatch(/console\./);
    expect(code).not.toContain('(?<');
  });

  it('never reads field values or markup', () => {
    const code = bundle.code.toString('utf8');
    for (const banned of ['.value', 'innerHTML', 'outerHTML', 'innerText', 'FormData', 'addEventListener("input"', 'addEventListener("change"', 'addEventListener("submit"', 'addEventListener("keydown"']) {
      expect(code, banned).not.toContain(banned);
    }
  });

  it('is deterministic (stable ETag across builds)', async () => {
    expect((await buildTagBundle()).hash).toBe(bundle.hash);
  });
});

describe('cachedTagBundle', () => {
  it('builds once, and retries after a failure', async () => {
    let calls = 0;
    const get = cachedTagBundle(async () => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return { code: Buffer.from('x'), gzip: Buffer.from('y'), hash: 'h', etag: 'W/"h"' };
    });
    await expect(get()).rejects.toThrow('boom');
    expect((await get()).hash).toBe('h');
    await get();
    expect(calls).toBe(2);
  });
});
