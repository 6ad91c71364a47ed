// The outcome of one stage on one input. Expected outcomes are returned, never thrown:
// `drop` is a deliberate discard (counted), `dlq` a permanent failure routed to the
// dead-letter output with a reason, `retry` a transient failure the runner backs off on.

export type Ok<T> = { readonly kind: 'ok'; readonly value: T };
export type Drop = { readonly kind: 'drop'; readonly reason: string };
export type Dlq = { readonly kind: 'dlq'; readonly reason: string; readonly error?: unknown };
export type Retry = { readonly kind: 'retry'; readonly reason: string; readonly error?: unknown };

export type Result<T> = Ok<T> | Drop | Dlq | Retry;

export const ok = <T>(value: T): Ok<T> => ({ kind: 'ok', value });
export const drop = (reason: string): Drop => ({ kind: 'drop', reason });
export const dlq = (reason: string, error?: unknown): Dlq => ({ kind: 'dlq', reason, error });
export const retry = (reason: string, error?: unknown): Retry => ({ kind: 'retry', reason, error });

export const isOk = <T>(r: Result<T>): r is Ok<T> => r.kind === 'ok';

/** A synchronous stage: one input in, one result out. Inputs are never mutated. */
export type Stage<In, Out> = (input: In) => Result<Out>;
