import { describe, expect, it } from 'vitest';
import { createLoadProgress } from './load-progress.js';
import { CaptureStream } from '../../test/support/capture-stream.js';


describe('createLoadProgress', () => {
  it('prints one plain line per 10% of a phase when the stream is not a terminal', () => {
    const out = new CaptureStream(false);
    const p = createLoadProgress(out);
    p.start('loading', 1_000, 'bytes');
    for (let v = 0; v <= 1_000; v += 50) p.update(v, { rows: v / 10, bad: 1 });
    p.stop();
    p.update(1_000);
    p.start('waiting', 4, 'requests');
    for (let v = 0; v <= 4; v++) p.update(v);
    p.stop();
    const lines = out.text.trim().split('\n');
    expect(lines.slice(0, 10)).toHaveLength(10);
    expect(lines[0]).toBe('loading: 10% (10 rows, 1 bad)');
    expect(lines[9]).toBe('loading: 100% (100 rows, 1 bad)');
    expect(lines.slice(10)).toEqual(['waiting: 20% (1/4 requests done)', 'waiting: 50% (2/4 requests done)', 'waiting: 70% (3/4 requests done)', 'waiting: 100% (4/4 requests done)']);
  });

  it('draws a cli-progress bar on a terminal', () => {
    const out = new CaptureStream(true);
    const p = createLoadProgress(out);
    p.start('loading', 100, 'bytes');
    p.update(100, { rows: 42, bad: 0 });
    p.stop();
    p.stop();
    expect(out.text).toMatch(/42 rows \| 0 bad/);
  });
});
