// The one poll loop of the tests, the bench and the fault scripts: wait for a condition by asking
// again, never by sleeping a guessed time.

/**
 * Polls `probe` every `everyMs` until it returns a truthy value, and resolves to that value.
 * A probe that throws counts as "not yet"; its last error is in the message of the rejection that
 * comes once `timeoutMs` has passed. A probe that throws a `GiveUp` ends the polling at once, with
 * that error (a process that exited will never become ready).
 */
export async function eventually<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  what = 'condition',
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Thrown by an `eventually` probe: the condition can no longer come true, stop polling. */
export class GiveUp extends Error {}
