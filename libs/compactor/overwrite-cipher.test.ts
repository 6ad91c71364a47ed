// Sealed overwrite records: they round-trip, hold no clear id or value, and refuse (with a
// reason that quotes nothing) every alteration, a foreign key, malformed payloads and unsealed
// records; refusals are logged by request id and counted, never quoting a value.
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { OverwriteCommand } from '../events/overwrite-command.js';
import type { OverwriteRecord } from '../kafka/record-types.js';
import { createOverwriteCipher, OVERWRITE_CIPHER_INFO, overwriteMessages, reportRejections } from './overwrite-cipher.js';
import { subjectHasher } from '../privacy/subject-hash.js';

const key = randomBytes(32);
const cipher = createOverwriteCipher(key);
const ID = 'erin.example@corp.example';
const NEW_EMAIL = 'anon-71c2@anonymous.invalid';
const cmd: OverwriteCommand = {
  request_id: '0b6f3c57-93c4-4c2e-9d34-1f0d2f8b9e10/0',
  tenant_id: 'acme',
  subject: 'user',
  id: ID,
  set: { email: NEW_EMAIL, first_name: null, 'ニックネーム': 'ゾーイ' },
  mode: 'anonymize',
  delete_events: false,
  suppress: true,
  requested_at: 1_760_000_000_000,
  insert_missing: null,
};
const secrets = [ID, NEW_EMAIL, 'ゾーイ', 'ニックネーム', 'first_name'];
const holds = (buf: Buffer, s: string) => buf.includes(Buffer.from(s, 'utf8'));

describe('overwrite cipher', () => {
  it('seals id and set, keeps the clear fields, and opens to the same command', () => {
    const sealed = cipher.seal(cmd);
    expect(sealed).toMatchObject({ request_id: cmd.request_id, tenant_id: 'acme', subject: 'user', mode: 'anonymize', suppress: true, requested_at: cmd.requested_at, id: '', set: {} });
    expect(sealed.sealed).toBeInstanceOf(Buffer);
    for (const s of secrets) expect(holds(sealed.sealed as Buffer, s), s).toBe(false);
    expect(cipher.open(sealed)).toEqual({ ok: true, value: cmd });
  });

  it('seals an erasure’s new id (replaceId) with the id, and opens a record sealed before it existed without one', () => {
    const replacing = { ...cmd, replacement_id: 'anon-5f0c2d4e-0d5b-4b7e-9a63-2f1d3c4b5a69' };
    const sealed = cipher.seal(replacing);
    expect(holds(sealed.sealed as Buffer, 'anon-5f0c')).toBe(false);
    expect(cipher.open(sealed)).toEqual({ ok: true, value: replacing });
    const opened = cipher.open(cipher.seal(cmd));
    expect(opened.ok && 'replacement_id' in opened.value).toBe(false);
  });

  it('seals each record under a fresh nonce', () => {
    expect(cipher.seal(cmd).sealed?.equals(cipher.seal(cmd).sealed as Buffer)).toBe(false);
  });

  it('is AES-256-GCM under HKDF-SHA256(TRACKLANE_ID_HASH_KEY, info) — not under the hash key itself', () => {
    const sealed = cipher.seal(cmd).sealed as Buffer;
    const derived = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), OVERWRITE_CIPHER_INFO, 32));
    expect(derived.equals(key)).toBe(false);
    const d = createDecipheriv('aes-256-gcm', derived, sealed.subarray(1, 13));
    d.setAAD(Buffer.from(JSON.stringify([1, cmd.request_id, cmd.tenant_id, cmd.subject, cmd.mode, cmd.delete_events, cmd.suppress, cmd.requested_at, cmd.insert_missing])));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = Buffer.concat([d.update(sealed.subarray(13, sealed.length - 16)), d.final()]).toString('utf8');
    expect(JSON.parse(plain)).toEqual({ id: ID, set: cmd.set });
  });

  const altered: [string, (r: OverwriteRecord) => OverwriteRecord, RegExp][] = [
    ['another tenant', (r) => ({ ...r, tenant_id: 'globex' }), /does not authenticate/],
    ['another mode', (r) => ({ ...r, mode: 'delete' }), /does not authenticate/],
    ['delete_events flipped', (r) => ({ ...r, delete_events: true }), /does not authenticate/],
    ['another request time', (r) => ({ ...r, requested_at: r.requested_at - 1 }), /does not authenticate/],
    ['a flipped ciphertext bit', (r) => {
      const s = Buffer.from(r.sealed as Buffer);
      s[20] = (s[20] ?? 0) ^ 1;
      return { ...r, sealed: s };
    }, /does not authenticate/],
    ['truncated', (r) => ({ ...r, sealed: (r.sealed as Buffer).subarray(0, 20) }), /truncated \(20 bytes\)/],
    ['an unknown format byte', (r) => ({ ...r, sealed: Buffer.concat([Buffer.from([9]), (r.sealed as Buffer).subarray(1)]) }), /unknown format 9/],
    ['a clear id besides the sealed one', (r) => ({ ...r, id: ID }), /also carries a clear id/],
  ];
  it.each(altered)('refuses a record with %s, quoting no value', (_name, alter, reason) => {
    const res = cipher.open(alter(cipher.seal(cmd)));
    expect(res.ok).toBe(false);
    const error = res.ok ? '' : res.error;
    expect(error).toMatch(reason);
    for (const s of secrets) expect(error.includes(s), s).toBe(false);
  });

  it('refuses a record sealed under another key, naming the setting', () => {
    const other = createOverwriteCipher(randomBytes(32));
    expect(other.open(cipher.seal(cmd))).toEqual({ ok: false, reason: 'not_authentic', error: expect.stringMatching(/TRACKLANE_ID_HASH_KEY/) });
  });

  it('refuses an unsealed record, however valid a command it is (forged without the key), quoting no value', () => {
    const unsealed: OverwriteRecord = { ...cmd, sealed: null };
    expect(cipher.open(unsealed)).toEqual({ ok: false, reason: 'not_sealed', error: 'overwrite record is not sealed' });
    expect(cipher.open({ ...unsealed, id: '', set: {} })).toEqual({ ok: false, reason: 'not_sealed', error: 'overwrite record is not sealed' });
  });
});

describe('reportRejections', () => {
  const reporting = () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const registry = new Registry();
    const c = reportRejections(cipher, { logger: { error: (obj, msg) => void lines.push({ obj: obj as Record<string, unknown>, msg }) }, registry });
    const count = async () => Object.fromEntries(((await registry.getMetricsAsJSON())[0]?.values ?? []).map((v) => [v.labels['reason'], v.value]));
    return { c, lines, count };
  };

  it('logs one error line with the request id and the reason, counts it by reason, and still refuses', async () => {
    const { c, lines, count } = reporting();
    const forged = createOverwriteCipher(randomBytes(32)).seal(cmd);
    expect(c.open(forged)).toMatchObject({ ok: false, reason: 'not_authentic' });
    expect(c.open({ ...cmd, sealed: null })).toMatchObject({ ok: false, reason: 'not_sealed' });
    expect(c.open({ ...cmd, sealed: null })).toMatchObject({ ok: false, reason: 'not_sealed' });
    expect(lines).toHaveLength(3);
    expect(lines[0]?.obj).toMatchObject({ requestId: cmd.request_id, reason: 'not_authentic' });
    expect(await count()).toEqual({ not_authentic: 1, not_sealed: 2 });
    const text = JSON.stringify(lines);
    for (const s of secrets) expect(text.includes(s), s).toBe(false);
  });

  it('logs no request id that is not one of ours (a forger chooses it), and nothing for a record that opens', async () => {
    const { c, lines, count } = reporting();
    expect(c.open({ ...cmd, request_id: ID, sealed: null })).toMatchObject({ ok: false });
    expect(lines[0]?.obj['requestId']).toBeNull();
    expect(JSON.stringify(lines).includes(ID)).toBe(false);
    expect(c.open(c.seal(cmd))).toEqual({ ok: true, value: cmd });
    expect(lines).toHaveLength(1);
    expect(await count()).toEqual({ not_sealed: 1 });
  });
});

describe('overwriteMessages', () => {
  it('keys each message by the keyed subject hash and puts only the sealed record in the value', () => {
    const hash = subjectHasher(randomBytes(32));
    const encoded: OverwriteRecord[] = [];
    const [m] = overwriteMessages([cmd], cipher, hash, (r) => {
      encoded.push(r);
      return Buffer.from(JSON.stringify({ ...r, sealed: r.sealed?.toString('base64') }));
    });
    expect(m?.key).toBe(hash('acme', ID));
    expect(m?.key).toMatch(/^[0-9a-f]{64}$/);
    for (const s of secrets) expect(holds(m?.value as Buffer, s) || (m?.key ?? '').includes(s), s).toBe(false);
    expect(encoded[0] && cipher.open(encoded[0])).toEqual({ ok: true, value: cmd });
  });
});
