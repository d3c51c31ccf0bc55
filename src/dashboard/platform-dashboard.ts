import type { Dispatch } from '../control/types.js';
import type { AppLogs } from '../logs/app-log.js';
import type { Maestro } from '../maestro/maestro.js';
import type { MetricsCollector } from '../metrics/metrics-collector.js';
import type { MetricsToken } from '../metrics/metrics-token.js';
import type { StateStore } from '../state/store.js';
import { AppView } from './app-view.js';
import type { DashboardAuth } from './auth.js';
import { startDashboard, type RunningDashboard } from './dashboard-server.js';
import { LiveLog } from './live-log.js';

export interface PlatformDashboardDeps {
  host: string;
  port: number;
  maestro: Maestro;
  logs: AppLogs;
  store: StateStore;
  dispatch: Dispatch;
  auth: DashboardAuth;
  metricsToken: MetricsToken;
  metrics: MetricsCollector;
}

/** The dashboard on the platform's own parts. */
export function startPlatformDashboard(d: PlatformDashboardDeps): Promise<RunningDashboard> {
  return startDashboard({
    host: d.host, port: d.port, auth: d.auth, metricsToken: d.metricsToken, dispatch: d.dispatch,
    view: new AppView(d.maestro, d.logs, d.metrics.buckets, d.metrics.fleet),
    live: new LiveLog(d.logs, d.maestro.events),
    metrics: d.metrics.prom,
    // The local CLI is root; a key must still exist and still be an admin key.
    stillAdmin: (c) => c.kind === 'local' || (c.kind === 'key' && d.store.get().keys.some((k) => k.name === c.name && k.admin)),
    appOfHost: (host) => d.maestro.apps.ownerOf(host),
  });
}
