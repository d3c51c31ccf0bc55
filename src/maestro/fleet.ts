import type { AppProcess } from './app-process.js';

/**
 * The processes of one release of one app (web.1, web.2, worker.1…). During a
 * deploy two fleets exist side by side: the serving one and the new one.
 */
export class Fleet {
  constructor(
    readonly app: string,
    readonly release: number,
    readonly processes: AppProcess[],
  ) {}

  /** Ports of the web processes that are up: the proxy's backends for this app. */
  webPorts(): number[] {
    return this.processes.filter((p) => p.type === 'web' && p.routable).map((p) => p.port!);
  }

  web(): AppProcess[] {
    return this.processes.filter((p) => p.type === 'web');
  }
}
