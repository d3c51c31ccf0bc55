import type { ProxySettings, RouteControl } from '../proxy/types.js';
import type { AcmeEntry, ProxyWorkerInfo, TlsMessage } from './protocol.js';
import { startProxyStack } from './proxy-stack.js';
import { ProxyWorkers, type Balance, type ProxyWorkersOptions } from './proxy-workers.js';

/** The data plane's proxy, in its own process or spread over worker processes: the same face either way. */
export interface ServingProxy {
  port: number;
  httpsPort: number | null;
  routes: RouteControl;
  configure(settings: ProxySettings): void | Promise<void>;
  tls(msg: TlsMessage): void | Promise<void>;
  acmeToken(token: string, entry: AcmeEntry): void | Promise<void>;
  workers(): Promise<ProxyWorkerInfo[]>;
  close(): Promise<void>;
}

/** count 1: the proxy runs in the data plane's own process; more: that many worker processes. */
export async function startServingProxy(o: ProxyWorkersOptions): Promise<ServingProxy> {
  if (o.count > 1) {
    const pool = await ProxyWorkers.start(o);
    return {
      port: pool.port, httpsPort: pool.httpsPort, routes: pool.routes,
      configure: (s) => pool.configure(s), tls: (m) => pool.tls(m), acmeToken: (t, e) => pool.acmeToken(t, e),
      workers: () => pool.workers(), close: () => pool.close(),
    };
  }
  let requests = 0;
  const startedAt = Date.now();
  const stack = await startProxyStack({
    listen: o.listen, state: { settings: null, tls: null, ticketKeys: null, tokens: [] }, onAccess: (e) => ((requests++), o.onAccess(e)),
  });
  return {
    ...stack,
    workers: async () => [{ slot: 0, pid: process.pid, state: 'serving', startedAt, connections: stack.connections(), requests, open: stack.open(), restarts: 0 }],
  };
}

/**
 * SO_REUSEPORT listeners where Node has them (>= 22.12, Linux), else one
 * listening socket shared by the workers. Measured (docs/performance.md): the
 * same with keep-alive, but under cluster's round-robin every new connection is
 * accepted on the data plane's one loop and handed over, which on a new
 * connection per request cost ~55–150 µs of its CPU each and capped throughput;
 * with either of the others the workers accept for themselves.
 */
export function defaultBalance(): Balance {
  return reusePortWorks() ? 'reuseport' : 'shared';
}

/** Whether this Node can give each worker its own listener on one port. */
export function reusePortWorks(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return process.platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}
