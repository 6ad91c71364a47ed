// The Grafana dashboard and the Prometheus alert rules use only metric names and stage labels
// the code really exports (libs/pipeline/metrics.ts, services/collector/collector-service.ts),
// and cover what operators watch: throughput per stage, lag, DLQ, batch latency, fail-closed
// pauses, compaction — and alert on lag growth, DLQ spikes, sink errors and anonymizer pauses.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { codeMetrics, codeStages, ROOT } from './packaging-support.js';

// NOTE: dashboard JSON and rule YAML are walked untyped (`any`): the assertions are their type check.
type Any = any;

const dashboard = JSON.parse(readFileSync(join(ROOT, 'k8s', 'base', 'observability', 'grafana-dashboard.json'), 'utf8')) as Any;
const rules = parse(readFileSync(join(ROOT, 'k8s', 'base', 'observability', 'prometheus-rules.yaml'), 'utf8')) as Any;

const panels: Any[] = dashboard.panels.filter((p: Any) => p.type !== 'row');
const promExprs: string[] = panels.flatMap((p) => p.targets.filter((t: Any) => typeof t.expr === 'string').map((t: Any) => t.expr as string));
const alerts: Any[] = rules.spec.groups.flatMap((g: Any) => g.rules);
const ruleExprs: string[] = alerts.map((r) => r.expr as string);

/** Metrics from other exporters the rules and panels may use, and who exports them. */
const OTHER_METRICS: Record<string, string> = {
  process_resident_memory_bytes: 'prom-client default metrics (collectDefaultMetrics)',
  process_cpu_seconds_total: 'prom-client default metrics (collectDefaultMetrics)',
  kube_pod_container_status_restarts_total: 'kube-state-metrics',
};
const PROMQL_WORDS = new Set(['sum', 'by', 'rate', 'increase', 'deriv', 'and', 'or', 'unless', 'histogram_quantile', 'le', 'stage', 'service', 'outcome', 'container', 'label_values']);

function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  return [...withoutStrings.matchAll(/\b([a-z_][a-z0-9_]*)\b/g)].map((m) => m[1] as string).filter((w) => !PROMQL_WORDS.has(w) && /_/.test(w));
}

describe('metric names and labels', () => {
  const exported = codeMetrics();

  it('the code exports the metrics the dashboard and rules are built on', () => {
    expect([...exported.keys()].sort()).toEqual([
      'tracklane_batch_seconds',
      'tracklane_collector_dropped_total',
      'tracklane_collector_events_total',
      'tracklane_collector_overflowed_events_total',
      'tracklane_compactor_receipts_total',
      'tracklane_compactor_rejected_commands_total',
      'tracklane_consumer_lag',
      'tracklane_consumer_rebuilds_total',
      'tracklane_dead_letters_total',
      'tracklane_dropped_total',
      'tracklane_events_in_total',
      'tracklane_events_out_total',
      'tracklane_plan_retries_total',
      'tracklane_plan_violation_rows_lost_total',
      'tracklane_plan_violations_total',
      'tracklane_rate_limit_unavailable_total',
      'tracklane_rate_limited_events_total',
      'tracklane_rate_limited_requests_total',
      'tracklane_retries_total',
    ]);
  });

  it.each([
    ['dashboard', promExprs],
    ['alert rules', ruleExprs],
  ])('the %s use only exported metric names (histograms via _bucket/_sum/_count)', (_what, exprs) => {
    expect(exprs.length).toBeGreaterThan(5);
    for (const expr of exprs) {
      for (const name of metricNames(expr)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const known =
          (exported.has(name) && exported.get(name) !== 'histogram') ||
          (base !== name && exported.get(base) === 'histogram') ||
          name in OTHER_METRICS;
        expect(known, `${name} in: ${expr}`).toBe(true);
      }
    }
  });

  it('stage labels name stages the workers really have', () => {
    const stages = codeStages();
    expect(stages).toEqual(['anonymize', 'compactor', 'dead-letters', 'enrich', 'sink']);
    for (const expr of [...promExprs, ...ruleExprs]) {
      for (const m of expr.matchAll(/stage="([^"]+)"/g)) expect(stages, expr).toContain(m[1]);
    }
  });

  it('the collector outcomes the rules use are the ones it counts', () => {
    const src = readFileSync(join(ROOT, 'services', 'collector', 'collector-service.ts'), 'utf8');
    for (const expr of [...promExprs, ...ruleExprs]) {
      for (const m of expr.matchAll(/outcome="([^"]+)"/g)) expect(src).toContain(`outcome: '${m[1]}'`);
    }
  });
});

describe('Grafana dashboard', () => {
  const titles = panels.map((p) => p.title as string);
  const exprOf = (title: RegExp) => panels.filter((p) => title.test(p.title)).flatMap((p) => p.targets.map((t: Any) => t.expr ?? t.rawSql)).join('\n');

  it.each([
    { topic: 'events in per stage', title: /^Events in per stage$/, uses: /tracklane_events_in_total/ },
    { topic: 'events out per stage', title: /^Events out per stage$/, uses: /tracklane_events_out_total/ },
    { topic: 'consumer lag', title: /lag/i, uses: /tracklane_consumer_lag/ },
    { topic: 'DLQ rate', title: /DLQ/, uses: /tracklane_dead_letters_total/ },
    { topic: 'batch latency', title: /latency/i, uses: /tracklane_batch_seconds_bucket/ },
    { topic: 'fail-closed pauses', title: /fail-closed/i, uses: /tracklane_retries_total/ },
    { topic: 'compaction receipts', title: /receipts/i, uses: /FROM overwrite_requests FINAL/ },
    { topic: 'compactor throughput', title: /^Compactor/, uses: /stage="compactor"/ },
  ])('has a panel for $topic', ({ title, uses }) => {
    expect(titles.some((t) => title.test(t)), titles.join(', ')).toBe(true);
    expect(exprOf(title)).toMatch(uses);
  });

  it('is importable: unique panel ids, a uid, datasource variables, panels on the grid', () => {
    const ids = dashboard.panels.map((p: Any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('tracklane-pipeline');
    expect(dashboard.templating.list.map((v: Any) => v.name)).toEqual(expect.arrayContaining(['datasource', 'clickhouse', 'service']));
    for (const p of dashboard.panels) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
  });

  it('the receipts query names columns of the overwrite_requests table', () => {
    const sql = exprOf(/receipts/i);
    const ddl = readFileSync(join(ROOT, 'schemas', 'clickhouse', '0005_overwrites.sql'), 'utf8');
    for (const col of ['status', 'requested_at']) {
      expect(sql).toContain(col);
      expect(ddl).toMatch(new RegExp(`\\n\\s+${col}\\s`));
    }
  });
});

describe('Prometheus alert rules', () => {
  it.each([
    { what: 'consumer lag growing', name: 'TracklaneConsumerLagGrowing', uses: /deriv\(tracklane_consumer_lag/ },
    { what: 'DLQ spike', name: 'TracklaneDeadLetterSpike', uses: /tracklane_dead_letters_total/ },
    { what: 'sink errors (stalled)', name: 'TracklaneSinkStalled', uses: /tracklane_events_out_total\{stage="sink"\}/ },
    { what: 'sink errors (crashes)', name: 'TracklaneSinkRestarting', uses: /container="sink"/ },
    { what: 'anonymizer paused', name: 'TracklaneAnonymizerPaused', uses: /tracklane_retries_total\{stage="anonymize"\}/ },
  ])('alerts on $what', ({ name, uses }) => {
    const rule = alerts.find((r) => r.alert === name);
    expect(rule, name).toBeDefined();
    expect(rule.expr).toMatch(uses);
    expect(rule.labels.severity).toMatch(/^(warning|critical)$/);
    expect(rule.annotations.summary).toBeTruthy();
  });

  it('every rule has a unique name, a severity and a summary', () => {
    const names = alerts.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of alerts) {
      expect(r.labels?.severity, r.alert).toBeDefined();
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });
});
