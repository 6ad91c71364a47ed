// How a round of the compactor stops early: an abort ends the batch without a receipt, a failed
// verification is retried like any failed step.

/** Thrown by a guard: the batch stops at once, writes no receipt, and is redelivered. */
export class RoundAbortedError extends Error {
  override readonly name: string = 'RoundAbortedError';
}

/** A verification that did not hold: retried like any failed step, its reason is PII-free. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}
