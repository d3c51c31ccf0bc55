import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { CertSource } from '../certs/certificate.js';
import type { ProxyWorkerInfo } from '../dataplane/protocol.js';
import type { ReleaseOutcome } from '../maestro/maestro-events.js';
import { sumOpen } from '../proxy/open-exchanges.js';
import { LATENCY_BOUNDS_MS, STATUS_CLASSES, latencyBucket, statusClass } from './minute-buckets.js';
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
  /** The processes serving the proxy, with what each has open (the data plane's answer). */
  proxyWorkers?(): Promise<ProxyWorkerInfo[]>;
  /** Each app host's certificate as served now (absent without HTTPS). */
  certificates?(): { app: string; host: string; source: CertSource; notAfter: Date }[];
}

/** A scrape never waits on the data plane longer than this: its series are left out instead. */
const PROXY_STATS_TIMEOUT_MS = 2000;
const DAY_MS = 86_400_000;

/** One app's requests since the server started, as plain numbers: the proxy's hot path only adds to them. */
interface RequestTotals {
  /** By STATUS_CLASSES index. */
  codes: number[];
  /** By LATENCY_BOUNDS_MS index, the last one past the highest bound. */
  latency: number[];
  latencyMsSum: number;
  count: number;
}

const LATENCY_NAME = 'platformx_http_request_duration_seconds';

/**
 * The latency histogram as prom-client's registry reads a metric (name, help,
 * type and get()), built from the totals at scrape time: prom-client's own
 * Histogram hashes its labels on every observe(), a microsecond a request.
 */
function latencyHistogram(totals: Map<string, RequestTotals>): Metric {
  const get = async () => ({
    name: LATENCY_NAME, help: 'Time from the request reaching the proxy to its response ending', type: 'histogram' as const, aggregator: 'sum' as const,
    values: [...totals].flatMap(([app, t]) => {
      let below = 0;
      return [
        ...LATENCY_BOUNDS_MS.map((ms, i) => ({ metricName: `${LATENCY_NAME}_bucket`, labels: { le: ms / 1000, app }, value: (below += t.latency[i]!) })),
        { metricName: `${LATENCY_NAME}_bucket`, labels: { le: '+Inf', app }, value: t.count },
        { metricName: `${LATENCY_NAME}_sum`, labels: { app }, value: t.latencyMsSum / 1000 },
        { metricName: `${LATENCY_NAME}_count`, labels: { app }, value: t.count },
      ];
    }),
  });
  return { name: LATENCY_NAME, type: 'histogram', get } as unknown as Metric;
}

/**
 * The Prometheus registry of the server: request counters and latency per app
 * (fed by the proxy's access entries), deploys by outcome with their duration,
 * and, read at scrape time, each process's memory, CPU and restarts, plus the
 * server process's own figures (event-loop lag, memory, handles).
 */
export class PromMetrics {
  readonly registry = new Registry();
  private readonly totals = new Map<string, RequestTotals>();
  private readonly deploys: Counter<'app' | 'outcome'>;
  private readonly deploySeconds: Histogram<'app' | 'outcome'>;
  /** Restarts last seen per process object: the counter grows by what changed since. */
  private readonly seenRestarts = new WeakMap<ProcessView, number>();
  private readonly restarts: Counter<'app' | 'process'>;

  constructor(private readonly fleet: FleetSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'platformx_server_' });
    const totals = this.totals;
    new Counter({
      name: 'platformx_http_requests_total', help: 'Requests the proxy answered for the app, by status class', labelNames: ['app', 'code'], registers,
      collect() {
        this.reset();
        for (const [app, t] of totals) t.codes.forEach((n, i) => n && this.inc({ app, code: STATUS_CLASSES[i]! }, n));
      },
    });
    this.registry.registerMetric(latencyHistogram(totals));
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
    this.proxyGauges(registers);
    new Gauge({
      name: 'platformx_certificate_expiry_days', help: 'Days until the certificate served for the host expires (negative: expired)',
      labelNames: ['app', 'host', 'source'], registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const c of fleet.certificates?.() ?? []) {
          this.set({ app: c.app, host: c.host, source: c.source }, Math.round(((c.notAfter.getTime() - now) / DAY_MS) * 100) / 100);
        }
      },
    });
    usageGauge('platformx_process_memory_bytes', 'Memory of the app process: its memory cgroup when sandboxed, else the RSS of its tree', (u) => u.memoryBytes);
    usageGauge('platformx_process_cpu_seconds', 'CPU seconds used by the running app process and its children', (u) => u.cpuSeconds);
  }

  /**
   * Read once per scrape from the data plane: requests and WebSockets open per
   * app (summed over the proxy workers), and the workers by state.
   */
  private proxyGauges(registers: Registry[]): void {
    const fleet = this.fleet;
    let pending: Promise<ProxyWorkerInfo[] | null> | null = null;
    // The three gauges share one question to the data plane per scrape.
    const workers = () => (pending ??= askWorkers(fleet).finally(() => setImmediate(() => (pending = null))));
    const perApp = (name: string, help: string, i: 0 | 1) =>
      new Gauge({
        name, help, labelNames: ['app'], registers,
        async collect() {
          this.reset();
          const list = await workers();
          if (!list) return;
          const open = sumOpen(list.flatMap((w) => (w.open ? [w.open] : [])));
          for (const app of fleet.apps()) this.set({ app }, open[app]?.[i] ?? 0);
        },
      });
    perApp('platformx_open_requests', 'Requests to the app open in the proxy now (WebSockets apart)', 0);
    perApp('platformx_open_websockets', 'WebSockets (upgrades the app accepted) open to the app now', 1);
    new Gauge({
      name: 'platformx_proxy_workers', help: 'Processes serving the proxy, by state', labelNames: ['state'], registers,
      async collect() {
        this.reset();
        const list = await workers();
        if (!list) return;
        for (const state of ['starting', 'serving', 'unresponsive', 'restarting'] as const) this.set({ state }, list.filter((w) => w.state === state).length);
      },
    });
    new Gauge({
      name: 'platformx_proxy_worker_restarts', help: 'Times a proxy worker died and was replaced, per slot, since the data plane started',
      labelNames: ['slot'], registers,
      async collect() {
        this.reset();
        for (const w of (await workers()) ?? []) this.set({ slot: String(w.slot) }, w.restarts);
      },
    });
  }

  /** One answered request (the proxy's access entry). */
  request(app: string, status: number, ms: number): void {
    let t = this.totals.get(app);
    if (!t) {
      t = { codes: STATUS_CLASSES.map(() => 0), latency: [...LATENCY_BOUNDS_MS, 0].map(() => 0), latencyMsSum: 0, count: 0 };
      this.totals.set(app, t);
    }
    t.codes[statusClass(status)]!++;
    t.latency[latencyBucket(ms)]!++;
    t.latencyMsSum += ms;
    t.count++;
  }

  release(e: ReleaseOutcome): void {
    this.deploys.inc({ app: e.app, outcome: e.outcome });
    this.deploySeconds.observe({ app: e.app, outcome: e.outcome }, e.seconds);
  }

  /** The Prometheus text exposition, without the series of apps destroyed meanwhile. */
  async text(): Promise<string> {
    const live = new Set(this.fleet.apps());
    for (const app of this.totals.keys()) if (!live.has(app)) this.totals.delete(app);
    const perApp: { get(): Promise<{ values: { labels: Record<string, string | number> }[] }>; remove(labels: Record<string, string | number>): void }[] =
      [this.deploys, this.deploySeconds, this.restarts];
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

/** The data plane's list of proxy workers, or null when it is absent or slow to answer. */
async function askWorkers(fleet: FleetSource): Promise<ProxyWorkerInfo[] | null> {
  if (!fleet.proxyWorkers) return null;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), PROXY_STATS_TIMEOUT_MS)));
  try {
    return await Promise.race([fleet.proxyWorkers().catch(() => null), late]);
  } finally {
    clearTimeout(timer);
  }
}
