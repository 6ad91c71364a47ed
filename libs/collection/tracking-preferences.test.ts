import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { subjectHasher } from '../privacy/subject-hash.js';
import { collected, tenantWith } from '../../test/support/collection-events.js';
import { openFileTrackingPreferences, trackingPreferenceControl } from './tracking-preferences.js';

const hash = subjectHasher(Buffer.alloc(32, 7));
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tl-prefs-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('file tracking preferences', () => {
  it('switches a user off and on again, per tenant, persisted across a reopen, users as keyed hashes only', async () => {
    const path = join(dir, 'tracking-preferences.json');
    const prefs = await openFileTrackingPreferences(path, hash);
    expect(prefs.tracked('acme', 'ann@acme.com')).toBe(true);
    expect(await prefs.set('acme', 'ann@acme.com', false, 1_000)).toEqual({ trackUsage: false, updatedAt: 1_000 });
    expect(prefs.tracked('acme', 'ann@acme.com')).toBe(false);
    expect(prefs.tracked('other', 'ann@acme.com')).toBe(true);
    expect(prefs.tracked('acme', 'bob@acme.com')).toBe(true);
    await prefs.close();

    expect(await readFile(path, 'utf8')).not.toContain('ann');
    const again = await openFileTrackingPreferences(path, hash);
    expect(again.tracked('acme', 'ann@acme.com')).toBe(false);
    expect(await again.get('acme', 'ann@acme.com')).toEqual({ trackUsage: false, updatedAt: 1_000 });
    await again.set('acme', 'ann@acme.com', true, 2_000);
    expect(again.tracked('acme', 'ann@acme.com')).toBe(true);
    expect(await again.get('acme', 'ann@acme.com')).toEqual({ trackUsage: true, updatedAt: null });
    await again.close();
    expect((await openFileTrackingPreferences(path, hash)).tracked('acme', 'ann@acme.com')).toBe(true);
  });

  it('refuses a file it cannot read instead of tracking everybody', async () => {
    const path = join(dir, 'tracking-preferences.json');
    await writeFile(path, '{"version":1,"off":[["acme","not-a-hash",1]]}');
    await expect(openFileTrackingPreferences(path, hash)).rejects.toThrow(/not a tracking preferences file/);
  });

  it('a change the file could not take is not applied in memory either', async () => {
    const prefs = await openFileTrackingPreferences(join(dir, 'missing-dir', 'prefs.json'), hash);
    await expect(prefs.set('acme', 'u1', false, 1)).rejects.toThrow();
    expect(prefs.tracked('acme', 'u1')).toBe(true);
  });
});

describe('trackingPreferenceControl', () => {
  it('drops identified events of users with tracking off, keeps anonymous ones, retries while unknown', async () => {
    const off = new Set(['u-off']);
    const control = trackingPreferenceControl({ tracked: (_t, u) => (u === 'u-unknown' ? undefined : !off.has(u)) });
    const [on, offEvent, anon, unknown] = [collected({ user_id: 'u-on' }), collected({ user_id: 'u-off' }), collected({ user_id: null, anonymous_id: 'a' }), collected({ user_id: 'u-unknown' })];
    const v = await control.apply(tenantWith(), [on!, offEvent!, anon!, unknown!], 0);
    expect(v.kept).toEqual([on, anon]);
    expect(v.dropped).toEqual([{ eventId: offEvent!.event.event_id, reason: 'tracking_off' }]);
    expect(v.retry).toEqual([{ eventId: unknown!.event.event_id, reason: expect.any(String) }]);
  });
});
