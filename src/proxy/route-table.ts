import type { DrainTracker, PortLoad } from './drain-tracker.js';

/** One app's routing state; `backends` is replaced whole, never mutated, so a switch is atomic. */
export interface AppRoute {
  readonly app: string;
  backends: readonly PortLoad[];
  /** Round-robin cursor over backends. */
  next: number;
  hosts: readonly string[];
}

/**
 * Hostname → app → backend ports. Lookups are one or two Map gets; all
 * normalisation of the table's side is done when Maestro changes it.
 */
export class RouteTable {
  private readonly byHost = new Map<string, AppRoute>();
  private readonly byApp = new Map<string, AppRoute>();

  constructor(private readonly loads: DrainTracker) {}

  setHosts(app: string, hosts: readonly string[]): void {
    const route = this.route(app);
    for (const h of route.hosts) if (this.byHost.get(h) === route) this.byHost.delete(h);
    route.hosts = hosts.map((h) => h.toLowerCase());
    for (const h of route.hosts) this.byHost.set(h, route);
  }

  setBackends(app: string, ports: readonly number[]): void {
    for (const p of ports) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        throw new RangeError(`setBackends(${JSON.stringify(app)}): ${p} is not a TCP port (1-65535); pass the ports the app's web processes listen on`);
      }
    }
    const route = this.route(app);
    const next = ports.map((p) => this.loads.load(p));
    for (const l of next) l.routes++;
    const previous = route.backends;
    route.backends = next;
    if (route.next >= next.length) route.next = 0;
    for (const l of previous) {
      l.routes--;
      this.loads.unrouted(l);
    }
  }

  removeApp(app: string): void {
    const route = this.byApp.get(app);
    if (!route) return;
    this.setBackends(app, []);
    for (const h of route.hosts) if (this.byHost.get(h) === route) this.byHost.delete(h);
    this.byApp.delete(app);
  }

  /** The route for a Host header value as sent (any case, optional port), or undefined. */
  lookup(hostHeader: string): AppRoute | undefined {
    // Most clients send the hostname exactly as registered: one Map get.
    return this.byHost.get(hostHeader) ?? this.byHost.get(hostname(hostHeader).toLowerCase());
  }

  /** Next backend of route in round-robin order, or undefined when it has none. */
  static pick(route: AppRoute): PortLoad | undefined {
    const list = route.backends;
    const n = list.length;
    if (n <= 1) return list[0];
    const i = route.next;
    route.next = i + 1 === n ? 0 : i + 1;
    return list[i];
  }

  private route(app: string): AppRoute {
    let route = this.byApp.get(app);
    if (!route) {
      route = { app, backends: [], next: 0, hosts: [] };
      this.byApp.set(app, route);
    }
    return route;
  }
}

/** The Host header without its port; IPv6 literals keep their brackets. */
export function hostname(hostHeader: string): string {
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    const close = hostHeader.indexOf(']');
    return close < 0 ? hostHeader : hostHeader.slice(0, close + 1);
  }
  const colon = hostHeader.indexOf(':');
  return colon < 0 ? hostHeader : hostHeader.slice(0, colon);
}
