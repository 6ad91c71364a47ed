// The web tag's entry point (bundled by build-tag.ts into GET /tag.js): replaces the install
// snippet's queueing stub `tracklane(...)` with the real command function and replays the
// calls queued before the script loaded. Commands: init, identify, track, page, consent,
// optOut, optIn, reset, flush.
import { safe, startTracker, type TagOptions, type Tracker } from './tracker.js';

type Args = ArrayLike<unknown>;
interface Command {
  (...args: unknown[]): void;
  q?: Args[];
  loaded?: boolean;
}

declare global {
  /** the page's `tracklane(...)` command: the snippet's queueing stub, then the tag's own */
  interface Window {
    tracklane?: Command;
  }
}

const MAX_PENDING = 100;

function install(): void {
  const w = window;
  const stub = w.tracklane;
  if (stub?.loaded) return; // the script was included twice
  // NOTE: only while the script runs: for `async` scripts too, currentScript is set then.
  const src = (document.currentScript as HTMLScriptElement | null)?.src;
  const scriptOrigin = src ? new URL(src).origin : null;
  let tracker: Tracker | null = null;
  let initialized = false;
  const pending: Args[] = [];

  function run(args: Args): void {
    const name = args[0];
    const a = args[1];
    const b = args[2];
    if (name === 'init') {
      if (initialized || typeof a !== 'string' || !a.trim()) return;
      initialized = true;
      const started = startTracker(a.trim(), (b ?? {}) as TagOptions, scriptOrigin);
      // NOTE: the calls queued before init run after the tracker's first page view, which it
      // schedules in a later task (tracker.ts: the timezone); calls made until then queue
      // behind them, so the order stays the page's. Timers of equal delay run in order.
      window.setTimeout(() =>
        safe(() => {
          tracker = started;
          for (const p of pending.splice(0)) safe(() => run(p));
        }),
      0);
      return;
    }
    if (!tracker) {
      if (pending.length < MAX_PENDING) pending.push(args);
      return;
    }
    switch (name) {
      case 'identify':
        return tracker.identify(a, b);
      case 'track':
        return tracker.track(a, b);
      case 'page':
        return tracker.page(a, b);
      case 'consent':
        return tracker.consent(a);
      case 'optOut':
        return tracker.optOut();
      case 'optIn':
        return tracker.optIn();
      case 'reset':
        return tracker.reset();
      case 'flush':
        return tracker.flush();
    }
  }

  const command: Command = (...args: unknown[]) => safe(() => run(args));
  command.loaded = true;
  w.tracklane = command;
  for (const args of stub?.q ?? []) safe(() => run(args));
}

safe(install);
