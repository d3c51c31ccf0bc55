import type { AppLogs } from '../logs/app-log.js';
import type { Maestro } from '../maestro/maestro.js';
import type { MinuteBuckets, MinutePoint } from '../metrics/minute-buckets.js';
import type { FleetSource } from '../metrics/prom-metrics.js';
import type { AppRecord } from '../state/types.js';

// What the pages show, gathered from Maestro, the metrics and the logs. Pages
// are plain functions of these records; no config value, token or key is in them.

export type AppState = 'running' | 'degraded' | 'crashed' | 'stopped' | 'not deployed';

export interface AppSummary {
  name: string;
  state: AppState;
  release: number | null;
  /** A release being built or switched to, if any. */
  deploying: number | null;
  processesUp: number;
  processes: number;
  perMinute: number[];
  requestsLastHour: number;
  /** Share of 5xx answers over the last hour, 0-1; null without requests. */
  errorRate: number | null;
}

export interface ReleaseRow {
  version: number;
  current: boolean;
  status: string;
  source: string;
  commit: string | null;
  description: string;
  by: string;
  createdAt: string;
  /** A succeeded, older release whose build is still kept. */
  canRollback: boolean;
}

export interface ProcessRow {
  name: string;
  release: number;
  pid: number | null;
  state: string;
  uptimeSeconds: number;
  restarts: number;
  memoryBytes: number | null;
  cpuPercent: number | null;
}

export interface LogRow {
  time: string;
  tag: string;
  text: string;
}

export interface AppDetail extends AppSummary {
  hosts: string[];
  memoryLimitBytes: number;
  /** Names only: values are secrets. */
  configKeys: string[];
  releases: ReleaseRow[];
  processRows: ProcessRow[];
  series: MinutePoint[];
  log: LogRow[];
}

export const LOG_TAIL_LINES = 100;

/** Splits a stored log line, "TIME TAG: TEXT". */
export function parseLogLine(line: string): LogRow {
  const sp = line.indexOf(' ');
  const colon = line.indexOf(': ', sp + 1);
  if (sp < 0 || colon < 0) return { time: '', tag: '', text: line };
  return { time: line.slice(0, sp), tag: line.slice(sp + 1, colon), text: line.slice(colon + 2) };
}

export class AppView {
  constructor(
    private readonly maestro: Maestro,
    private readonly logs: AppLogs,
    private readonly buckets: MinuteBuckets,
    private readonly fleet: FleetSource,
    private readonly clock: () => number = Date.now,
  ) {}

  list(): AppSummary[] {
    return this.maestro.apps.list().map((a) => this.summary(a, this.buckets.series(a.name, this.clock())));
  }

  has(name: string): boolean {
    return this.maestro.apps.list().some((a) => a.name === name);
  }

  /** The app's page, or null when there is no such app. */
  async detail(name: string): Promise<AppDetail | null> {
    if (!this.has(name)) return null;
    // The log is read first, the rest after that wait, so the page describes one moment (and no app destroyed meanwhile).
    const log = (await this.logs.get(name).tail(LOG_TAIL_LINES)).map(parseLogLine);
    const app = this.maestro.apps.list().find((a) => a.name === name);
    if (!app) return null;
    const series = this.buckets.series(app.name, this.clock());
    const now = this.clock();
    return {
      ...this.summary(app, series),
      hosts: this.maestro.apps.hosts(app),
      memoryLimitBytes: app.limits.memoryMb * 1024 * 1024,
      configKeys: Object.keys(app.config).sort(),
      releases: [...this.maestro.releases.list(app.name)].reverse().map((r) => ({
        version: r.version, current: r.version === app.current, status: r.status, source: r.source,
        commit: r.commit?.slice(0, 7) ?? null, description: r.description, by: r.by, createdAt: r.createdAt,
        canRollback: r.status === 'succeeded' && r.version !== app.current && this.maestro.releases.buildExists(app.name, r.build),
      })),
      processRows: this.fleet.processes(app.name).map((p) => {
        const usage = p.pid === null ? null : this.fleet.usage(p.pid, p.startedAt);
        return {
          name: p.name, release: this.maestro.pipeline.liveFleet(app.name)?.release ?? 0, pid: p.pid, state: p.state,
          uptimeSeconds: p.pid === null ? 0 : Math.max(0, Math.floor((now - p.startedAt) / 1000)), restarts: p.restarts,
          memoryBytes: usage?.memoryBytes ?? null, cpuPercent: usage?.cpuPercent ?? null,
        };
      }),
      series,
      log,
    };
  }

  private summary(app: AppRecord, series: MinutePoint[]): AppSummary {
    const procs = this.fleet.processes(app.name);
    const up = procs.filter((p) => p.state === 'up').length;
    const requests = series.reduce((n, p) => n + p.requests, 0);
    const errors = series.reduce((n, p) => n + p.errors5xx, 0);
    let state: AppState;
    if (app.current === null) state = 'not deployed';
    else if (procs.length === 0) state = 'stopped';
    else if (up === procs.length) state = 'running';
    else state = up === 0 ? 'crashed' : 'degraded';
    return {
      name: app.name, state, release: app.current,
      deploying: [...this.maestro.releases.list(app.name)].reverse().find((r) => r.status === 'building')?.version ?? null,
      processesUp: up, processes: procs.length,
      perMinute: series.map((p) => p.requests), requestsLastHour: requests,
      errorRate: requests === 0 ? null : errors / requests,
    };
  }
}
