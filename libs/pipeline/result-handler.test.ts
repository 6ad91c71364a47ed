import { describe, expect, it } from 'vitest';
import { dlq, drop, ok, retry, type Result } from '../core/result.js';
import { createPipelineMetrics } from './metrics.js';
import { pipeline, stage } from './pipeline.js';
import { createResultHandler } from './result-handler.js';

const ids = { tenantId: 't', eventId: 'e' };

async function counts(metrics: ReturnType<typeof createPipelineMetrics>): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    if (!['tracklane_events_in_total', 'tracklane_events_out_total', 'tracklane_dropped_total', 'tracklane_dead_letters_total', 'tracklane_retries_total'].includes(m.name)) continue;
    for (const v of m.values) {
      const s = String(v.labels['stage']);
      (out[s] ??= {})[m.name.replace(/^tracklane_|_total$/g, '')] = v.value;
    }
  }
  return out;
}

function setup() {
  const metrics = createPipelineMetrics('test');
  const judge = stage('judge', (n: number): Result<number> => (n === 1 ? drop('one') : n === 2 ? dlq('two', new TypeError('bad')) : n === 3 ? retry('three') : ok(n)));
  const p = pipeline(stage('first', (n: number): Result<number> => ok(n))).then(judge);
  const handler = createResultHandler({ stages: p.stages, metrics, now: () => 42 });
  const route = (n: number, repeat?: { attempt: number; retriedAt: string }) => handler.route(p.run(n) as Awaited<ReturnType<typeof p.run>>, ids, repeat);
  return { metrics, handler, route };
}

describe('result handler', () => {
  it('routes each outcome and names the stage that gave it', () => {
    const { route } = setup();
    expect(route(0)).toEqual({ kind: 'ok', value: 0 });
    expect(route(1)).toEqual({ kind: 'drop', stage: 'judge', reason: 'one' });
    expect(route(3)).toEqual({ kind: 'retry', stage: 'judge', reason: 'three' });
    expect(route(2)).toEqual({
      kind: 'dlq',
      letter: { stage: 'judge', reason: 'two', error: 'TypeError: bad', attempts: 1, tenantId: 't', eventId: 'e', failedAt: 42, input: 2 },
    });
  });

  it('counts every stage an input reached, and outputs and dead letters only once handed on', async () => {
    const { metrics, handler, route } = setup();
    route(0);
    route(1);
    const letter = route(2);
    route(3);
    expect(await counts(metrics)).toEqual({
      first: { events_in: 4, events_out: 4 },
      judge: { events_in: 4, dropped: 1, retries: 1 },
    });
    handler.handedOn(1, letter.kind === 'dlq' ? [letter.letter] : []);
    expect((await counts(metrics))['judge']).toEqual({ events_in: 4, events_out: 1, dropped: 1, retries: 1, dead_letters: 1 });
  });

  it('does not count a retried input as taken, or handed on by the stages before, again', async () => {
    const { metrics, handler, route } = setup();
    route(3);
    route(3, { attempt: 2, retriedAt: 'judge' });
    expect(route(0, { attempt: 3, retriedAt: 'judge' })).toEqual({ kind: 'ok', value: 0 });
    handler.handedOn(1, []);
    expect(await counts(metrics)).toEqual({ first: { events_in: 1, events_out: 1 }, judge: { events_in: 1, events_out: 1, retries: 2 } });
  });

  it('counts the stages after the one that asked for a retry once the input reaches them', async () => {
    const metrics = createPipelineMetrics('test');
    let ready = false;
    const gate = stage('gate', (n: number): Result<number> => (ready ? ok(n) : retry('not yet')));
    const p = pipeline(gate).then(stage('next', (n: number): Result<number> => ok(n))).then(stage('end', (n: number): Result<number> => ok(n)));
    const handler = createResultHandler({ stages: p.stages, metrics });
    const first = handler.route(p.run(1) as Awaited<ReturnType<typeof p.run>>, ids);
    expect(first).toEqual({ kind: 'retry', stage: 'gate', reason: 'not yet' });
    ready = true;
    handler.route(p.run(1) as Awaited<ReturnType<typeof p.run>>, ids, { attempt: 2, retriedAt: 'gate' });
    handler.handedOn(1, []);
    expect(await counts(metrics)).toEqual({
      gate: { events_in: 1, events_out: 1, retries: 1 },
      next: { events_in: 1, events_out: 1 },
      end: { events_in: 1, events_out: 1 },
    });
  });

  it('counts an unreadable record as taken by the first stage and dead-letters it as decode', async () => {
    const { metrics, handler } = setup();
    const letter = handler.unreadable(Buffer.from('xx'), 'record cannot be decoded', 'bad magic byte');
    expect(letter).toEqual({ stage: 'decode', reason: 'record cannot be decoded', error: 'bad magic byte', attempts: 1, tenantId: null, eventId: null, failedAt: 42, unreadable: Buffer.from('xx') });
    handler.handedOn(0, [letter]);
    expect(await counts(metrics)).toEqual({ first: { events_in: 1, dead_letters: 1 } });
  });

  it('counts a batch as route() does, once committed, and each commit only what came since the last', async () => {
    const one = setup();
    const many = setup();
    const batch = many.handler.batch();
    for (const n of [0, 1, 2, 3, 0, 4]) {
      expect(batch.route(runOf(n) as Awaited<ReturnType<typeof runOf>>, ids)).toEqual(one.route(n));
    }
    expect(await counts(many.metrics)).toEqual({});
    batch.commit();
    expect(await counts(many.metrics)).toEqual(await counts(one.metrics));
    batch.commit();
    expect(await counts(many.metrics)).toEqual(await counts(one.metrics));
    batch.route(runOf(3) as Awaited<ReturnType<typeof runOf>>, ids, { attempt: 2, retriedAt: 'judge' });
    one.route(3, { attempt: 2, retriedAt: 'judge' });
    batch.commit();
    expect(await counts(many.metrics)).toEqual(await counts(one.metrics));
    expect((await counts(many.metrics))['judge']).toEqual({ events_in: 6, dropped: 1, retries: 2 });
  });
});

const judgeOf = stage('judge', (n: number): Result<number> => (n === 1 ? drop('one') : n === 2 ? dlq('two', new TypeError('bad')) : n === 3 ? retry('three') : ok(n)));
const pipelineOf = pipeline(stage('first', (n: number): Result<number> => ok(n))).then(judgeOf);
const runOf = (n: number) => pipelineOf.run(n);
