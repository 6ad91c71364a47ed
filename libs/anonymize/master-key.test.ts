import { describe, expect, it } from 'vitest';
import { MasterKeyError, parseMasterKey } from './master-key.js';

// A recognisable secret: if any part of it shows up in a message, the test sees it.
const SECRET = 'SECRET-CANARY-7f3a-do-not-log-me-0123456789';
const SECRET_HEX = Buffer.from(SECRET).toString('hex');
const SECRET_B64 = Buffer.from(SECRET).toString('base64');

describe('parseMasterKey', () => {
  const good: Array<[string, string, Buffer]> = [
    ['raw utf8', SECRET, Buffer.from(SECRET, 'utf8')],
    ['hex', `hex:${SECRET_HEX}`, Buffer.from(SECRET)],
    ['hex uppercase', `hex:${SECRET_HEX.toUpperCase()}`, Buffer.from(SECRET)],
    ['base64', `base64:${SECRET_B64}`, Buffer.from(SECRET)],
    ['base64 unpadded', `base64:${SECRET_B64.replace(/=+$/, '')}`, Buffer.from(SECRET)],
    ['base64url', `base64:${Buffer.from(SECRET).toString('base64url')}`, Buffer.from(SECRET)],
    ['base64 with trailing newline', `base64:${SECRET_B64}\n`, Buffer.from(SECRET)],
    ['exactly 32 bytes', 'hex:' + '11'.repeat(32), Buffer.alloc(32, 0x11)],
  ];
  it.each(good)('accepts %s', (_name, raw, expected) => {
    expect(parseMasterKey(raw).equals(expected)).toBe(true);
  });

  const bad: Array<[string, string | undefined, RegExp]> = [
    ['undefined', undefined, /is not set/],
    ['empty', '', /is not set/],
    ['short raw', 'SECRET-CANARY-short', /must be at least 32 bytes \(got 19\)/],
    ['short hex', 'hex:' + 'ab'.repeat(31), /must be at least 32 bytes \(got 31\)/],
    ['short base64', 'base64:' + Buffer.alloc(16, 7).toString('base64'), /must be at least 32 bytes \(got 16\)/],
    ['odd hex', `hex:${SECRET_HEX}f`, /not valid hex/],
    ['non-hex', `hex:${SECRET_HEX.slice(2)}zz`, /not valid hex/],
    ['bad base64', `base64:${SECRET_B64.slice(0, 20)}!!${SECRET_B64.slice(20)}`, /not valid base64/],
  ];
  it.each(bad)('rejects %s with a MasterKeyError that does not quote the key', (_name, raw, message) => {
    let caught: unknown;
    try {
      parseMasterKey(raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MasterKeyError);
    const err = caught as MasterKeyError;
    expect(err.name).toBe('MasterKeyError');
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/^TRACKLANE_MASTER_KEY /);
    const printed = `${err.message}\n${err.stack ?? ''}\n${JSON.stringify(err)}`;
    expect(printed).not.toContain('CANARY');
    expect(printed).not.toContain(SECRET_HEX.slice(0, 16));
    expect(printed).not.toContain(SECRET_B64.slice(0, 16));
  });
});
