import type { DrainTracker, PortLoad } from './drain-tracker.js';
import type { BackendShift } from './types.js';

/** A gradual switch in progress: the share of requests still sent to `from` falls from 1 to 0. */
interface Shift {
  readonly from: readonly PortLoad[];
  next: number;
  readonly start: number;
  readonly ms: number;
  readonly timer: NodeJS.Timeout;
  readonly done: () => void;
}

/** One app's routing state; `backends` is replaced whole, never mutated, so a switch is atomic. */
export interface AppRoute {
  readonly app: string;
  backends: readonly PortLoad[];
  /** Round-robin cursor over backends. */
  next: number;
  hosts: readonly string[];
  shift: Shift | null;
  /** Requests routed: counted per request, read once a second into `rate`. */
  picks: number;
  rate: number;
}

/** Below this many requests a second a new process takes all traffic at once: its cold start goes unnoticed. */
export const SLOW_START_MIN_RATE = 50;

/**
 * Hostname → app → backend ports. Lookups are one or two Map gets; all
 * normalisation of the table's side is done when Maestro changes it.
 */
export class RouteTable {
  private readonly byHost = new Map<string, AppRoute>();
  private readonly byApp = new Map<string, AppRoute>();
  private readonly rates: NodeJS.Timeout;

  constructor(private readonly loads: DrainTracker) {
    this.rates = setInterval(() => {
      for (const r of this.byApp.values()) {
        r.rate = r.picks;
        r.picks = 0;
      }
    }, 1000);
    this.rates.unref();
  }

  close(): void {
    clearInterval(this.rates);
    for (const r of this.byApp.values()) this.endShift(r);
  }

  setHosts(app: string, hosts: readonly string[]): void {
    const route = this.route(app);
    for (const h of route.hosts) if (this.byHost.get(h) === route) this.byHost.delete(h);
    route.hosts = hosts.map((h) => h.toLowerCase());
    for (const h of route.hosts) this.byHost.set(h, route);
  }

  /** Switches the app to `ports` at once (ending any gradual switch). */
  setBackends(app: string, ports: readonly number[]): void {
    const route = this.route(app);
    this.endShift(route);
    this.unroute(this.replace(route, ports));
  }

  /**
   * Switches the app to `ports` over `ms`, like HAProxy's slowstart: each request
   * goes to the new ports with a probability rising from 0 to 1, else to the
   * previous ones, so a freshly started process warms up (JIT, caches) on part
   * of the traffic instead of taking all of it cold. Each request still goes
   * wholly to one release. At once when there was nothing before or the app is
   * quiet (`busy`, when the caller measured the rate across proxy workers, else this table's rate).
   */
  shiftBackends(app: string, ports: readonly number[], ms: number, busy?: boolean): BackendShift {
    const route = this.route(app);
    this.endShift(route);
    if (ms <= 0 || route.backends.length === 0 || !(busy ?? route.rate >= SLOW_START_MIN_RATE)) {
      this.setBackends(app, ports);
      return { gradual: false, done: Promise.resolve() };
    }
    const from = this.replace(route, ports);
    const done = new Promise<void>((resolve) => {
      route.shift = { from, next: 0, start: performance.now(), ms, timer: setTimeout(() => this.endShift(route), ms), done: resolve };
    });
    return { gradual: true, done };
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
    route.picks++;
    const shift = route.shift;
    if (shift !== null && Math.random() * shift.ms >= performance.now() - shift.start) {
      return roundRobin(shift.from, shift);
    }
    return roundRobin(route.backends, route);
  }

  private route(app: string): AppRoute {
    let route = this.byApp.get(app);
    if (!route) {
      route = { app, backends: [], next: 0, hosts: [], shift: null, picks: 0, rate: 0 };
      this.byApp.set(app, route);
    }
    return route;
  }

  /** Makes `ports` the route's backends; returns the previous ones, still counted as routed. */
  private replace(route: AppRoute, ports: readonly number[]): readonly PortLoad[] {
    for (const p of ports) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        throw new RangeError(`setBackends(${JSON.stringify(route.app)}): ${p} is not a TCP port (1-65535); pass the ports the app's web processes listen on`);
      }
    }
    const next = ports.map((p) => this.loads.load(p));
    for (const l of next) l.routes++;
    const previous = route.backends;
    route.backends = next;
    if (route.next >= next.length) route.next = 0;
    return previous;
  }

  private unroute(loads: readonly PortLoad[]): void {
    for (const l of loads) {
      l.routes--;
      this.loads.unrouted(l);
    }
  }

  private endShift(route: AppRoute): void {
    const shift = route.shift;
    if (!shift) return;
    route.shift = null;
    clearTimeout(shift.timer);
    this.unroute(shift.from);
    shift.done();
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

function roundRobin(list: readonly PortLoad[], cursor: { next: number }): PortLoad | undefined {
  const n = list.length;
  if (n <= 1) return list[0];
  const i = cursor.next;
  cursor.next = i + 1 === n ? 0 : i + 1;
  return list[i];
}
