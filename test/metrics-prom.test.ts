// The Prometheus registry: per-app series from access entries and release
// outcomes, per-process figures read at scrape time.
import { describe, expect, it } from 'vitest';
import { PromMetrics, type FleetSource, type ProcessView } from '../src/metrics/prom-metrics.js';

function fleet(procs: Record<string, ProcessView[]>): FleetSource {
  return {
    apps: () => Object.keys(procs),
    processes: (app) => procs[app] ?? [],
    usage: (pid) => ({ memoryBytes: pid * 1000, cpuSeconds: pid / 100, cpuPercent: 1 }),
  };
}

/** The value of one sample line, e.g. value(text, 'platformx_http_requests_total{app="a",code="2xx"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('PromMetrics', () => {
  it('counts requests by status class and observes latency per app', async () => {
    const m = new PromMetrics(fleet({ a: [], b: [] }));
    for (let i = 0; i < 7; i++) m.request('a', 200, 12);
    m.request('a', 503, 1500);
    m.request('a', 499, 3);
    m.request('b', 301, 1);
    const text = await m.text();
    expect(value(text, 'platformx_http_requests_total{app="a",code="2xx"}')).toBe(7);
    expect(value(text, 'platformx_http_requests_total{app="a",code="5xx"}')).toBe(1);
    expect(value(text, 'platformx_http_requests_total{app="a",code="4xx"}')).toBe(1);
    expect(value(text, 'platformx_http_requests_total{app="b",code="3xx"}')).toBe(1);
    expect(value(text, 'platformx_http_request_duration_seconds_count{app="a"}')).toBe(9);
    expect(value(text, 'platformx_http_request_duration_seconds_bucket{le="0.025",app="a"}')).toBe(8);
    expect(value(text, 'platformx_http_request_duration_seconds_bucket{le="1",app="a"}')).toBe(8);
    expect(value(text, 'platformx_http_request_duration_seconds_bucket{le="2.5",app="a"}')).toBe(9);
    // The server's own figures, event-loop lag among them.
    expect(text).toMatch(/^platformx_server_nodejs_eventloop_lag_seconds \d/m);
  });

  it('counts deploys by outcome with their duration', async () => {
    const m = new PromMetrics(fleet({ a: [] }));
    m.release({ app: 'a', version: 1, source: 'git', outcome: 'succeeded', seconds: 4 });
    m.release({ app: 'a', version: 2, source: 'git', outcome: 'failed', seconds: 40 });
    m.release({ app: 'a', version: 3, source: 'rollback', outcome: 'succeeded', seconds: 1.5 });
    const text = await m.text();
    expect(value(text, 'platformx_deploys_total{app="a",outcome="succeeded"}')).toBe(2);
    expect(value(text, 'platformx_deploys_total{app="a",outcome="failed"}')).toBe(1);
    expect(value(text, 'platformx_deploy_duration_seconds_sum{app="a",outcome="succeeded"}')).toBe(5.5);
    expect(value(text, 'platformx_deploy_duration_seconds_bucket{le="2",app="a",outcome="succeeded"}')).toBe(1);
  });

  it('reads processes at scrape time: state, memory, CPU, and restarts as a counter that never goes back', async () => {
    const web: ProcessView & { restarts: number } = { name: 'web.1', type: 'web', pid: 42, restarts: 0, state: 'up', startedAt: 0 };
    const worker: ProcessView = { name: 'worker.1', type: 'worker', pid: null, restarts: 0, state: 'crashed', startedAt: 0 };
    const m = new PromMetrics(fleet({ a: [web, worker] }));
    let text = await m.text();
    expect(value(text, 'platformx_processes{app="a",type="web",state="up"}')).toBe(1);
    expect(value(text, 'platformx_processes{app="a",type="worker",state="crashed"}')).toBe(1);
    expect(value(text, 'platformx_process_memory_bytes{app="a",process="web.1"}')).toBe(42_000);
    expect(value(text, 'platformx_process_cpu_seconds{app="a",process="web.1"}')).toBe(0.42);
    expect(value(text, 'platformx_process_memory_bytes{app="a",process="worker.1"}')).toBeUndefined();
    expect(value(text, 'platformx_process_restarts_total{app="a",process="web.1"}')).toBe(0);
    web.restarts = 2;
    expect(value(await m.text(), 'platformx_process_restarts_total{app="a",process="web.1"}')).toBe(2);
    expect(value(await m.text(), 'platformx_process_restarts_total{app="a",process="web.1"}')).toBe(2);
    // After a healthy run the process counts from 0 again: its 1 is a new restart.
    web.restarts = 1;
    text = await m.text();
    expect(value(text, 'platformx_process_restarts_total{app="a",process="web.1"}')).toBe(3);
  });

  it('drops the series of an app once it is destroyed', async () => {
    const apps: Record<string, ProcessView[]> = { a: [], gone: [] };
    const m = new PromMetrics(fleet(apps));
    m.request('gone', 200, 1);
    m.request('a', 200, 1);
    m.release({ app: 'gone', version: 1, source: 'git', outcome: 'succeeded', seconds: 1 });
    expect(await m.text()).toContain('app="gone"');
    delete apps.gone;
    const text = await m.text();
    expect(text).not.toContain('app="gone"');
    expect(value(text, 'platformx_http_requests_total{app="a",code="2xx"}')).toBe(1);
  });
});
