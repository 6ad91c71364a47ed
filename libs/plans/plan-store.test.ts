// The embedded plan store: versions only grow (removals included, across restarts), changes
// survive a reopen, a corrupt file is refused rather than reset.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openFilePlanStore, PlanFileError } from './file-plan-store.js';
import { trackingPlanSchema } from './plan-schema.js';

const PLAN = trackingPlanSchema.parse({ mode: 'omit', unplanned: 'flag', events: { 'Signed Up': { type: 'object' } } });
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plans-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('file plan store', () => {
  it('puts, gets, removes; versions grow across removal and reopen', async () => {
    const path = join(dir, 'tracking-plans.json');
    const store = await openFilePlanStore(path);
    expect(store.get('acme')).toBeNull();
    expect(await store.put('acme', PLAN, 10)).toEqual({ version: 1, updatedAt: 10, plan: PLAN });
    expect((await store.put('acme', { ...PLAN, mode: 'block' }, 20)).version).toBe(2);
    expect(await store.remove('acme')).toBe(true);
    expect(await store.remove('acme')).toBe(false);
    expect(store.get('acme')).toBeNull();
    await store.put('other', PLAN, 30);
    await store.close();

    const reopened = await openFilePlanStore(path);
    expect(reopened.get('other')).toEqual({ version: 1, updatedAt: 30, plan: PLAN });
    expect(reopened.get('acme')).toBeNull();
    // NOTE: never version 1 or 2 again: a collector's cache of version 2 must not serve a new plan
    expect((await reopened.put('acme', PLAN, 40)).version).toBe(4);
  });

  it('a corrupt file is refused, naming it, and left as it is', async () => {
    const path = join(dir, 'tracking-plans.json');
    writeFileSync(path, '{"version":1,"plans":{"acme":{"version":0}},"versions":{}}');
    await expect(openFilePlanStore(path)).rejects.toThrow(PlanFileError);
    await expect(openFilePlanStore(path)).rejects.toThrow(/tracking-plans.json are corrupt: plans.acme/);
    writeFileSync(path, 'not json');
    await expect(openFilePlanStore(path)).rejects.toThrow(/not valid JSON/);
    expect(readFileSync(path, 'utf8')).toBe('not json');
  });
});
