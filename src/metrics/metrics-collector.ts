import path from 'node:path';
import type { Maestro } from '../maestro/maestro.js';
import type { AccessEntry } from '../proxy/types.js';
import { BucketFile } from './bucket-file.js';
import { MinuteBuckets } from './minute-buckets.js';
import { UsageSampler } from './process-usage.js';
import { PromMetrics, type FleetSource } from './prom-metrics.js';

const SAVE_EVERY_MS = 60_000;

/**
 * What metrics read of Maestro (made later than the proxy that feeds them, hence the getter),
 * plus the data plane's proxy workers and the certificates, where the server has them.
 */
export function maestroFleet(
  maestro: () => Maestro, more: Pick<FleetSource, 'proxyWorkers' | 'certificates'> = {}, sampler = new UsageSampler(),
): FleetSource {
  return {
    ...more,
    apps: () => maestro().apps.list().map((a) => a.name),
    processes: (app) => maestro().pipeline.liveFleet(app)?.processes ?? [],
    usage: (pid, startedAt) => sampler.sample(pid, startedAt),
  };
}

/**
 * The server's figures: the proxy's access entries into per-app minute buckets
 * (saved to DATA/metrics.json every minute and at stop, so a restart keeps the
 * last hour) and into the Prometheus registry; release outcomes from Maestro.
 */
export class MetricsCollector {
  readonly buckets = new MinuteBuckets();
  readonly prom: PromMetrics;
  private readonly file: BucketFile;
  private timer: NodeJS.Timeout | null = null;

  constructor(dataDir: string, readonly fleet: FleetSource, private readonly clock: () => number = Date.now) {
    this.file = new BucketFile(path.join(dataDir, 'metrics.json'));
    this.prom = new PromMetrics(fleet);
  }

  /** The proxy's onAccess: a few additions per request. */
  readonly onAccess = (e: AccessEntry): void => {
    if (!e.app) return;
    this.buckets.record(e.app, e.status, e.ms, this.clock());
    this.prom.request(e.app, e.status, e.ms);
  };

  /** Reads the saved hour and starts saving every minute. */
  start(): void {
    this.file.load(this.buckets, new Set(this.fleet.apps()), this.clock());
    this.timer = setInterval(() => this.save(), SAVE_EVERY_MS);
    this.timer.unref();
  }

  /** Writes the hour to the file; a destroyed app's figures go (a new app of that name starts empty). */
  save(): void {
    const apps = new Set(this.fleet.apps());
    for (const [app] of this.buckets.entries(this.clock())) if (!apps.has(app)) this.buckets.forget(app);
    this.file.save(this.buckets, apps, this.clock());
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.save();
  }
}
