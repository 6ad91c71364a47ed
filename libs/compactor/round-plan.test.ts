import { describe, expect, it } from 'vitest';
import { overwriteCommand } from '../../test/compactor/overwrite-commands.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { pendingReceipt } from './receipts.js';
import { deletesEvents, keyOf, maxCounts, planCommand, stageCommand, suppresses } from './round-plan.js';

const cmd = overwriteCommand;

const stored: UserRow = {
  tenant_id: 't', user_id: 'u', email: 'old@x.io', first_name: 'Old', last_name: null, name: null, phone: null, title: null,
  company: null, account_id: null, traits: {}, first_seen: 1, last_seen: 2, identity_anonymized: 0, version: 500, is_deleted: 0, updated_at: 2,
};

describe('round predicates', () => {
  it.each([
    [{}, false, false],
    [{ suppress: true }, true, false],
    [{ suppress: true, subject: 'account' as const }, false, false],
    [{ mode: 'delete' as const, delete_events: true }, false, true],
    [{ mode: 'delete' as const, delete_events: true, subject: 'account' as const }, false, false],
    [{ mode: 'anonymize' as const, delete_events: true }, false, false],
  ])('%o: suppresses %s, deletes events %s', (over, s, d) => {
    expect(suppresses(cmd(over))).toBe(s);
    expect(deletesEvents(cmd(over))).toBe(d);
  });
});

describe('planCommand', () => {
  it('builds the new version on the stored row, with its old and new values', () => {
    const c = cmd({ set: { email: 'new@x.io' } });
    const plan = planCommand(stageCommand(c, []), { users: new Map([[keyOf(c), stored]]), accounts: new Map() }, pendingReceipt(c, (_t, id) => `h:${id}`), 9_000);
    expect(plan.newUser).toMatchObject({ email: 'new@x.io', first_name: 'Old', version: 1_000, updated_at: 9_000 });
    expect(plan.newAccount).toBeNull();
    expect([...plan.oldValues]).toEqual(['old@x.io', '"old@x.io"']);
    expect([...plan.newValues]).toEqual(['new@x.io', '"new@x.io"']);
  });
  it('has no new row for a subject never stored', () => {
    const c = cmd({ set: { email: 'new@x.io' } });
    const plan = planCommand(stageCommand(c, []), { users: new Map(), accounts: new Map() }, pendingReceipt(c, (_t, id) => id), 9_000);
    expect(plan.newUser).toBeNull();
    expect(plan.oldValues.size).toBe(0);
  });
});

describe('maxCounts', () => {
  // a round run again after a crash counts only what was left: the receipt keeps the larger count
  it.each([
    [{}, { events: 3 }, { events: 3 }],
    [{ events: 3, users: 1 }, { events: 0, users: 1 }, { events: 3, users: 1 }],
    [{ events_deleted: 5 }, { events_deleted: 2, dead_letters_deleted: 1 }, { events_deleted: 5, dead_letters_deleted: 1 }],
  ])('%o then %o → %o', (a, b, out) => {
    expect(maxCounts(a, b)).toEqual(out);
  });
});
