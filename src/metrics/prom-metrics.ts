import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReleaseOutcome } from '../maestro/maestro-events.js';
import { LATENCY_BOUNDS_MS, STATUS_CLASSES, statusClass } from './minute-buckets.js';
import type { ProcessUsage, SampledUsage } from './process-usage.js';

/** One running app process as metrics see it (Maestro's AppProcess fits). */
export interface ProcessView {
  readonly name: string;
  readonly type: string;
  readonly pid: number | null;
  readonly restarts: number;
  readonly state: string;
  readonly startedAt: number;
}

/** Where the per-process figures come from at scrape time. */
export interface FleetSource {
  /** Apps that exist now: series of any other app are dropped. */
  apps(): string[];
  processes(app: string): readonly ProcessView[];
  /** What the running process pid, started at startedAt (ms), uses. */
  usage(pid: number, startedAt: number): SampledUsage;
}

/**
 * The Prometheus registry of the server: request counters and latency per app
 * (fed by the proxy's access entries), deploys by outcome with their duration,
 * and, read at scrape time, each process's memory, CPU and restarts, plus the
 * server process's own figures (event-loop lag, memory, handles).
 */
export class PromMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'app' | 'code'>;
  private readonly latency: Histogram<'app'>;
  private readonly deploys: Counter<'app' | 'outcome'>;
  private readonly deploySeconds: Histogram<'app' | 'outcome'>;
  /** Per app: its request counters by status class and its latency histogram, bound once (the hot path). */
  private readonly bound = new Map<string, { codes: Counter.Internal[]; latency: Histogram.Internal<'app'> }>();
  /** Restarts last seen per process object: the counter grows by what changed since. */
  private readonly seenRestarts = new WeakMap<ProcessView, number>();
  private readonly restarts: Counter<'app' | 'process'>;

  constructor(private readonly fleet: FleetSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'platformx_server_' });
    this.requests = new Counter({ name: 'platformx_http_requests_total', help: 'Requests the proxy answered for the app, by status class', labelNames: ['app', 'code'], registers });
    this.latency = new Histogram({
      name: 'platformx_http_request_duration_seconds', help: 'Time from the request reaching the proxy to its response ending',
      labelNames: ['app'], buckets: LATENCY_BOUNDS_MS.map((ms) => ms / 1000), registers,
    });
    this.deploys = new Counter({ name: 'platformx_deploys_total', help: 'Releases that went live or failed (deploys, rollbacks, config changes)', labelNames: ['app', 'outcome'], registers });
    this.deploySeconds = new Histogram({
      name: 'platformx_deploy_duration_seconds', help: 'From the release being created to it serving or failing',
      labelNames: ['app', 'outcome'], buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600], registers,
    });
    const self = this;
    this.restarts = new Counter({
      name: 'platformx_process_restarts_total', help: 'Restarts of crashed app processes (seen when scraped)', labelNames: ['app', 'process'], registers,
      collect() {
        for (const app of fleet.apps()) {
          for (const p of fleet.processes(app)) {
            const before = self.seenRestarts.get(p) ?? 0;
            // The process's own count starts again at 0 after a healthy run: a smaller number is all new.
            const grew = p.restarts >= before ? p.restarts - before : p.restarts;
            self.seenRestarts.set(p, p.restarts);
            this.inc({ app, process: p.name }, grew);
          }
        }
      },
    });
    new Gauge({
      name: 'platformx_processes', help: 'App processes of the serving release, by type and state', labelNames: ['app', 'type', 'state'], registers,
      collect() {
        this.reset();
        for (const app of fleet.apps()) for (const p of fleet.processes(app)) this.inc({ app, type: p.type, state: p.state });
      },
    });
    const usageGauge = (name: string, help: string, pick: (u: ProcessUsage) => number | null) =>
      new Gauge({
        name, help, labelNames: ['app', 'process'], registers,
        collect() {
          this.reset();
          for (const app of fleet.apps()) {
            for (const p of fleet.processes(app)) {
              const v = p.pid === null ? null : pick(fleet.usage(p.pid, p.startedAt));
              if (v !== null) this.set({ app, process: p.name }, v);
            }
          }
        },
      });
    usageGauge('platformx_process_memory_bytes', 'Memory of the app process: its memory cgroup when sandboxed, else the RSS of its tree', (u) => u.memoryBytes);
    usageGauge('platformx_process_cpu_seconds', 'CPU seconds used by the running app process and its children', (u) => u.cpuSeconds);
  }

  /** One answered request (the proxy's access entry). */
  request(app: string, status: number, ms: number): void {
    let b = this.bound.get(app);
    if (!b) {
      b = { codes: STATUS_CLASSES.map((code) => this.requests.labels({ app, code })), latency: this.latency.labels({ app }) };
      this.bound.set(app, b);
    }
    b.codes[statusClass(status)]!.inc();
    b.latency.observe(ms / 1000);
  }

  release(e: ReleaseOutcome): void {
    this.deploys.inc({ app: e.app, outcome: e.outcome });
    this.deploySeconds.observe({ app: e.app, outcome: e.outcome }, e.seconds);
  }

  /** The Prometheus text exposition, without the series of apps destroyed meanwhile. */
  async text(): Promise<string> {
    const live = new Set(this.fleet.apps());
    for (const app of this.bound.keys()) if (!live.has(app)) this.bound.delete(app);
    const perApp: { get(): Promise<{ values: { labels: Record<string, string | number> }[] }>; remove(labels: Record<string, string | number>): void }[] =
      [this.requests, this.latency, this.deploys, this.deploySeconds, this.restarts];
    for (const metric of perApp) {
      for (const { labels } of (await metric.get()).values) {
        if (live.has(String(labels.app))) continue;
        const { le: _bucket, ...series } = labels;
        metric.remove(series);
      }
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
