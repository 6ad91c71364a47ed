import { describe, expect, it } from 'vitest';
import { errorChain, tlsFailure, tlsFailureOfCode } from './tls-errors.js';

const sys = (code: string) => Object.assign(new Error('quoting nothing'), { code });

describe('TLS failures by Node error code', () => {
  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', 'untrusted'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'untrusted'],
    ['CERT_HAS_EXPIRED', 'expired'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'hostname'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'not-tls'],
    ['ECONNREFUSED', undefined],
  ])('%s → %s', (code, kind) => {
    expect(tlsFailureOfCode(code)).toBe(kind);
  });

  it('finds the failure through cause and KafkaJS-style originalError wrappers', () => {
    const wrapped = Object.assign(new Error('retries exceeded'), { originalError: new Error('connection', { cause: sys('DEPTH_ZERO_SELF_SIGNED_CERT') }) });
    expect(errorChain(wrapped)).toHaveLength(3);
    expect(tlsFailure(wrapped)).toBe('untrusted');
    expect(tlsFailure(new Error('plain'))).toBeUndefined();
  });

  it('stops on a cycle', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    a.cause = a;
    expect(errorChain(a)).toEqual([a]);
  });
});
