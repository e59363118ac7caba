/**
 * The dashboards and the alert rules name only metrics that exist: a live API
 * and live workers are scraped (each on its own /metrics), and every metric
 * in every panel query and every rule expression must be one of the families
 * they export.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

const dir = join(import.meta.dirname, '..', '..', 'dashboards');

interface Panel {
  title: string;
  type: string;
  datasource?: { uid: string };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string }[] };
}

const dashboards = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, d: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Dashboard }));
const rules = (
  parse(readFileSync(join(dir, 'parley.rules.yml'), 'utf8')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] }
).groups.flatMap((g) => g.rules);

const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads (functions, label matchers, ranges and groupings left out). */
export function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/[a-zA-Z_][a-zA-Z0-9_]*\s*\(/g, '(');
  return [...new Set((e.match(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((t) => !keywords.has(t.toLowerCase())))];
}

/** Every sample name a Prometheus text exposition can hold: families from `# TYPE`, histograms with their suffixes. */
function exported(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_count', '_sum']) out.add(name + s);
    if (type === 'summary') for (const s of ['_count', '_sum']) out.add(name + s);
  }
  return out;
}

let stack: Stack;
let operator: TestUser;
let available: Set<string>;

beforeAll(async () => {
  stack = await startStack();
  operator = await stack.user('operator');
  const api = await stack.request('GET', '/metrics', { user: operator });
  expect(api.status).toBe(200);
  const worker = await fetch(`http://127.0.0.1:${stack.workers!.opsPort}/metrics`);
  expect(worker.status).toBe(200);
  available = new Set([...exported(api.text), ...exported(await worker.text())]);
});
afterAll(() => stack?.stop());

describe('dashboards', () => {
  it('covers queues and jobs, Ollama per model, caches, auth, discussions and the realtime hub', () => {
    expect(dashboards.map((x) => x.d.uid).sort()).toEqual([
      'parley-auth',
      'parley-caches',
      'parley-discussions',
      'parley-ollama',
      'parley-overview',
      'parley-queues-jobs',
      'parley-realtime',
    ]);
    const ollama = dashboards.find((x) => x.d.uid === 'parley-ollama')!.d;
    const exprs = ollama.panels
      .flatMap((p) => p.targets ?? [])
      .map((t) => t.expr)
      .join('\n');
    for (const m of [
      'parley_llm_time_to_first_token_seconds_bucket',
      'parley_llm_tokens_per_second_bucket',
      'parley_job_queue_wait_seconds_bucket',
      'parley_ollama_breaker_state',
    ])
      expect(exprs).toContain(m);
    expect(ollama.templating.list.map((v) => v.name)).toContain('model');
  });

  it('are well-formed: unique uids and panel ids, every panel on the datasource variable with a query', () => {
    expect(new Set(dashboards.map((x) => x.d.uid)).size).toBe(dashboards.length);
    for (const { file, d } of dashboards) {
      expect(d.title, file).toBeTruthy();
      expect(d.templating.list.find((v) => v.name === 'datasource')?.type, file).toBe('datasource');
      const ids = d.panels.map((p) => (p as { id?: number }).id);
      expect(new Set(ids).size, file).toBe(ids.length);
      for (const p of d.panels) {
        expect(p.datasource?.uid, `${file}: ${p.title}`).toBe('${datasource}');
        expect(p.targets?.length, `${file}: ${p.title}`).toBeGreaterThan(0);
      }
    }
  });

  it('name only metrics the live processes export', () => {
    const missing: string[] = [];
    for (const { file, d } of dashboards) {
      for (const p of d.panels)
        for (const t of p.targets ?? []) for (const m of metricNames(t.expr)) if (!available.has(m)) missing.push(`${file} "${p.title}": ${m}`);
      for (const v of d.templating.list)
        for (const m of v.query?.startsWith('label_values(') ? [v.query.slice(13).split(/[,)]/)[0]!.trim()] : [])
          if (!available.has(m)) missing.push(`${file} variable ${v.name}: ${m}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('alert rules', () => {
  it('alert on queue backlog age, failure rate, breaker open, Redis memory and stalled jobs', () => {
    const exprs = Object.fromEntries(rules.map((r) => [r.alert, r.expr]));
    expect(exprs.ParleyQueueBacklogOld).toContain('parley_queue_oldest_job_age_seconds');
    expect(exprs.ParleyJobFailureRateHigh).toContain('outcome="failed"');
    expect(exprs.ParleyOllamaBreakerOpen).toContain('parley_ollama_breaker_state{state="open"}');
    expect(exprs.ParleyRedisMemoryHigh).toContain('parley_redis_memory_used_bytes');
    expect(exprs.ParleyJobsStalled).toContain('parley_jobs_stalled_total');
  });

  it('name only metrics the live processes export', () => {
    const missing = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((m) => !available.has(m))
        .map((m) => `${r.alert}: ${m}`),
    );
    expect(missing).toEqual([]);
  });
});

describe('the check itself', () => {
  it('reads metric names out of PromQL and would catch a renamed metric', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, model) (rate(parley_llm_time_to_first_token_seconds_bucket{model=~"$model"}[5m])))')).toEqual([
      'parley_llm_time_to_first_token_seconds_bucket',
    ]);
    expect(metricNames('max(parley_redis_memory_used_bytes) / max(parley_redis_memory_max_bytes > 0) > 0.8').sort()).toEqual([
      'parley_redis_memory_max_bytes',
      'parley_redis_memory_used_bytes',
    ]);
    expect(metricNames('sum(rate(x_total{a="b"}[1m])) and on (job) up')).toEqual(['x_total', 'up']);
    // The old names, before this deploy work, are gone from the live processes.
    for (const old of ['parley_ollama_in_flight', 'parley_worker_process_cpu_seconds_total', 'parley_api_nodejs_heap_size_used_bytes'])
      expect(available.has(old), old).toBe(false);
    expect(available.has('parley_ollama_requests_in_flight')).toBe(true);
  });
});
