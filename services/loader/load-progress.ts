// Progress of a load on stderr: a cli-progress bar on a terminal; otherwise one plain line per
// 10% of a phase, so CI logs and pipes stay readable.
import cliProgress from 'cli-progress';

export type ProgressUnit = 'bytes' | 'requests';

export interface ProgressCounts {
  rows: number;
  bad: number;
}

export interface LoadProgress {
  /** a new phase ("loading", "waiting", …) whose value runs from 0 to total */
  start(phase: string, total: number, unit: ProgressUnit): void;
  update(value: number, counts?: ProgressCounts): void;
  /** ends the phase; idempotent */
  stop(): void;
}

export interface ProgressStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export const silentProgress: LoadProgress = { start: () => undefined, update: () => undefined, stop: () => undefined };

export function createLoadProgress(stream: ProgressStream): LoadProgress {
  return stream.isTTY ? barProgress(stream) : lineProgress(stream);
}

function barProgress(stream: ProgressStream): LoadProgress {
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(phase, total, unit) {
      bar?.stop();
      const detail = unit === 'bytes' ? '{rows} rows | {bad} bad' : '{value}/{total} requests done';
      bar = new cliProgress.SingleBar(
        { stream, format: `${phase.padEnd(9)} [{bar}] {percentage}% | ${detail} | {eta_formatted} left`, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(total, 1), 0, { rows: 0, bad: 0 });
    },
    update(value, counts) {
      bar?.update(value, counts ?? {});
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

function lineProgress(stream: ProgressStream): LoadProgress {
  let phase = '';
  let total = 0;
  let unit: ProgressUnit = 'bytes';
  let lastDecile = 0;
  let active = false;
  return {
    start(p, t, u) {
      [phase, total, unit, lastDecile, active] = [p, t, u, 0, true];
    },
    update(value, counts) {
      if (!active) return;
      const decile = total > 0 ? Math.floor((Math.min(value, total) / total) * 10) : 10;
      if (decile <= lastDecile) return;
      lastDecile = decile;
      const detail = unit === 'bytes' ? `${counts?.rows ?? 0} rows, ${counts?.bad ?? 0} bad` : `${value}/${total} requests done`;
      stream.write(`${phase}: ${decile * 10}% (${detail})\n`);
    },
    stop() {
      active = false;
    },
  };
}
