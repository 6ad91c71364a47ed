// What kind of TLS failure an error is, from Node's error codes (never its message): one list
// for every client's start-up diagnosis (Kafka, the schema registry, Redis, ClickHouse).

export type TlsFailure = 'untrusted' | 'expired' | 'hostname' | 'not-tls';

/** Node's verification failures of the peer's certificate chain. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** a TLS client that got a plain-text answer */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

export function tlsFailureOfCode(code: unknown): TlsFailure | undefined {
  if (typeof code !== 'string') return undefined;
  if (UNTRUSTED.has(code)) return 'untrusted';
  if (EXPIRED.has(code)) return 'expired';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'hostname';
  if (NOT_TLS.has(code)) return 'not-tls';
  return undefined;
}

/** The error and what it wraps (KafkaJS: originalError; others: cause), outermost first. */
export function errorChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && chain.length < 8; ) {
    chain.push(e);
    const next = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
    e = next === e ? undefined : next;
  }
  return chain;
}

/** The first TLS failure in an error's chain. */
export function tlsFailure(err: unknown): TlsFailure | undefined {
  for (const e of errorChain(err)) {
    const failure = tlsFailureOfCode((e as { code?: unknown }).code);
    if (failure !== undefined) return failure;
  }
  return undefined;
}
