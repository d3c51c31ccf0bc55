import type { RouteEntry } from './worker-protocol.js';

/**
 * The route table of record, kept by the data plane when proxy workers serve:
 * each change is recorded here before it is sent to the workers, so a worker
 * that starts later gets the whole table as it stands.
 */
export class RouteRecord {
  private readonly apps = new Map<string, RouteEntry>();

  setHosts(app: string, hosts: readonly string[]): void {
    this.entry(app).hosts = [...hosts];
  }

  setBackends(app: string, ports: readonly number[]): void {
    this.entry(app).ports = [...ports];
  }

  removeApp(app: string): void {
    this.apps.delete(app);
  }

  snapshot(): RouteEntry[] {
    return [...this.apps.values()].map((e) => ({ app: e.app, hosts: [...e.hosts], ports: [...e.ports] }));
  }

  private entry(app: string): RouteEntry {
    let e = this.apps.get(app);
    if (!e) {
      e = { app, hosts: [], ports: [] };
      this.apps.set(app, e);
    }
    return e;
  }
}

/**
 * Requests per app in the last whole second, counted from the access entries
 * of every worker: slow start must see the app's total rate, not one worker's share.
 */
export class AppRates {
  private counting = new Map<string, number>();
  private last = new Map<string, number>();
  private readonly timer = setInterval(() => {
    this.last = this.counting;
    this.counting = new Map();
  }, 1000).unref();

  count(app: string): void {
    this.counting.set(app, (this.counting.get(app) ?? 0) + 1);
  }

  rate(app: string): number {
    return this.last.get(app) ?? 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
