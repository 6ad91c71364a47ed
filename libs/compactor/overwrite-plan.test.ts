import { describe, expect, it } from 'vitest';
import { overwriteCommand } from '../../test/compactor/overwrite-commands.js';
import type { UserRow } from '../clickhouse/tables/users.js';
import { anonymousEmail, attributeChanges, mapRewrite, newAccountRow, newUserRow, valuesOf } from './overwrite-plan.js';

const cmd = overwriteCommand;

const stored: UserRow = {
  tenant_id: 't', user_id: 'u', email: 'old@x.io', first_name: 'Old', last_name: 'Name', name: null, phone: '+1 555', title: null,
  company: null, account_id: null, traits: { nickname: '"oldie"', plan: '"pro"' }, first_seen: 1, last_seen: 2, identity_anonymized: 0,
  version: 500, is_deleted: 0, updated_at: 2,
};

describe('attributeChanges', () => {
  it.each([
    { name: 'overwrite maps aliases to columns, others to traits', c: cmd({ set: { firstName: 'A', email: 'a@x.io', plan: null } }), pii: [], want: { columns: { first_name: 'A', email: 'a@x.io' }, traits: { plan: null } } },
    { name: 'anonymize scrubs PII columns and the tenant PII traits', c: cmd({ mode: 'anonymize' }), pii: ['nickname'], want: { columns: { email: anonymousEmail('t', 'u'), first_name: null, last_name: null, name: null, phone: null }, traits: { nickname: null } } },
    { name: 'a PII trait stored in a column is scrubbed there', c: cmd({ mode: 'anonymize' }), pii: ['title', 'jobTitle'], want: { columns: { email: anonymousEmail('t', 'u'), first_name: null, last_name: null, name: null, phone: null, title: null }, traits: { jobTitle: null } } },
    { name: 'explicit set wins over anonymize', c: cmd({ mode: 'anonymize', set: { email: 'kept@x.io' } }), pii: [], want: { columns: { email: 'kept@x.io', first_name: null, last_name: null, name: null, phone: null }, traits: {} } },
    { name: 'accounts: name and domain are columns', c: cmd({ subject: 'account', set: { name: 'N', tier: 'gold' } }), pii: [], want: { columns: { name: 'N' }, traits: { tier: 'gold' } } },
  ])('$name', ({ c, pii, want }) => {
    expect(attributeChanges(c, pii)).toEqual(want);
  });
});

describe('mapRewrite', () => {
  it('rewrites every events key of a column, JSON-encoded; cleared ones are dropped', () => {
    expect(mapRewrite('user', { columns: { first_name: 'A', last_name: null }, traits: { plan: 'x' } })).toEqual({
      repl: { firstName: '"A"', first_name: '"A"', plan: '"x"' },
      drop: ['lastName', 'last_name'],
    });
  });
});

describe('newUserRow / newAccountRow', () => {
  it('applies the changes on the stored row at version requested_at', () => {
    const row = newUserRow(stored, cmd({ requested_at: 1_000 }), { columns: { email: 'n@x.io' }, traits: { nickname: null } }, 9);
    expect(row).toMatchObject({ email: 'n@x.io', first_name: 'Old', traits: { plan: '"pro"' }, version: 1_000, is_deleted: 0, updated_at: 9 });
  });

  it('wins over a stored row newer than the request', () => {
    expect(newUserRow({ ...stored, version: 2_000 }, cmd({ requested_at: 1_000 }), { columns: {}, traits: {} }, 9)?.version).toBe(2_001);
  });

  it('delete marks the row deleted', () => {
    expect(newUserRow(stored, cmd({ mode: 'delete' }), { columns: {}, traits: {} }, 9)?.is_deleted).toBe(1);
  });

  it.each([
    { name: 'no stored row, no insert_missing → nothing', c: cmd(), want: null },
    { name: 'insert_missing on an erasure → nothing (never creates to erase)', c: cmd({ mode: 'anonymize', insert_missing: true }), want: null },
  ])('$name', ({ c, want }) => {
    expect(newUserRow(null, c, { columns: { email: 'n@x.io' }, traits: {} }, 9)).toBe(want);
    expect(newAccountRow(null, { ...c, subject: 'account' }, { columns: { name: 'N' }, traits: {} }, 9)).toBe(want);
  });

  it('insert_missing creates an empty row with the changes', () => {
    expect(newUserRow(null, cmd({ insert_missing: true }), { columns: { email: 'n@x.io' }, traits: { plan: 'trial' } }, 9)).toMatchObject({
      tenant_id: 't', user_id: 'u', email: 'n@x.io', first_name: null, traits: { plan: '"trial"' }, version: 1_000, is_deleted: 0,
    });
    expect(newAccountRow(null, cmd({ subject: 'account', id: 'acme', insert_missing: true }), { columns: { name: 'Acme' }, traits: {} }, 9)).toMatchObject({
      account_id: 'acme', name: 'Acme', domain: null, source: 'explicit', version: 1_000,
    });
  });
});

describe('valuesOf', () => {
  it('lists the plain and JSON forms of the values being replaced', () => {
    expect(valuesOf(stored, { columns: { email: 'n' }, traits: { nickname: null } })).toEqual(['old@x.io', '"old@x.io"', '"oldie"', 'oldie']);
  });
});
