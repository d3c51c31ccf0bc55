import { startProxy } from '../proxy/proxy-server.js';
import type { RouteControl } from '../proxy/types.js';
import type { ProxyWorkerInfo } from './protocol.js';
import { ProxyWorkers, type Balance, type ProxyWorkersOptions } from './proxy-workers.js';

/** The data plane's proxy, in its own process or spread over worker processes: the same face either way. */
export interface ServingProxy {
  port: number;
  routes: RouteControl;
  workers(): Promise<ProxyWorkerInfo[]>;
  close(): Promise<void>;
}

/** count 1: the proxy runs in the data plane's own process; more: that many worker processes. */
export async function startServingProxy(o: ProxyWorkersOptions): Promise<ServingProxy> {
  if (o.count > 1) {
    const pool = await ProxyWorkers.start(o);
    return { port: pool.port, routes: pool.routes, workers: () => pool.workers(), close: () => pool.close() };
  }
  let requests = 0;
  const startedAt = Date.now();
  const proxy = await startProxy({ ...o.proxy, onAccess: (e) => ((requests++), o.onAccess(e)) });
  return {
    port: proxy.port, routes: proxy.routes, close: proxy.close,
    workers: async () => [{ slot: 0, pid: process.pid, state: 'serving', startedAt, connections: proxy.connections(), requests, restarts: 0 }],
  };
}

/**
 * SO_REUSEPORT listeners where Node has them (>= 22.12, Linux), else cluster's
 * round-robin. Measured where both work (docs/performance.md): the same with
 * keep-alive, but under cluster every new connection is accepted on the data
 * plane's one loop and handed over, which on a new connection per request cost
 * ~55 µs there and capped throughput; with reusePort the kernel spreads them.
 */
export function defaultBalance(): Balance {
  return reusePortWorks() ? 'reuseport' : 'cluster';
}

/** Whether this Node can give each worker its own listener on one port. */
export function reusePortWorks(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}
