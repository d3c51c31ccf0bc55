import type { Apprunner } from '../apprunner/apprunner.js';
import type { AppLogs } from '../logs/app-log.js';
import type { RouteControl } from '../proxy/types.js';
import type { AppRecord, ReleaseRecord } from '../state/types.js';
import { AppProcess } from './app-process.js';
import type { DeployOutput } from './deploy-output.js';
import { Fleet } from './fleet.js';
import { checkHealth, readHealthCheck } from './health-check.js';
import { warmUp } from './warm-up.js';
import type { PortAllocator } from './port-allocator.js';
import type { ProcessTypes } from './process-types.js';
import type { ProcessRegistry } from './process-registry.js';

export interface PipelineDeps {
  apprunner: Apprunner;
  ports: PortAllocator;
  routes: RouteControl;
  logs: AppLogs;
  registry: ProcessRegistry;
  /** Seconds the old release may keep open requests and WebSockets after the switch. */
  drainTimeoutMs: number;
  bootTimeoutMs: number;
  /** How long a busy app's traffic takes to move to a new fleet (slow start); 0 switches at once. */
  slowStartMs: number;
}

export interface FleetPlan {
  app: AppRecord;
  release: ReleaseRecord;
  releaseDir: string;
  processTypes: ProcessTypes;
  /** The Node the build was made for (engines.node); absent: the server's own. */
  runtime?: { nodeDir: string };
}

/**
 * Maestro's restart pipeline, in the order the design gives it:
 *   free port → start the new process → health check → switch the route
 *   (each request to one release; a busy app's share moves over slowStartMs)
 *   → drain the previous process → stop it.
 * The first three are `start`, which may fail and leaves the serving release
 * untouched; the last three are `promote` and `retire`, which cannot fail.
 */
export class RestartPipeline {
  /** The fleet that serves each app. */
  private readonly live = new Map<string, Fleet>();
  /** The fleet each app's traffic is moving away from, during a slow start. */
  private readonly leaving = new Map<string, Fleet>();

  constructor(private readonly deps: PipelineDeps) {}

  liveFleet(app: string): Fleet | undefined {
    return this.live.get(app);
  }

  /** Steps 1–3: free port → start → health check, for every process of the formation. */
  async start(plan: FleetPlan, out: DeployOutput): Promise<Fleet> {
    const { app, release, releaseDir, processTypes, runtime } = plan;
    const check = readHealthCheck(releaseDir, this.deps.bootTimeoutMs);
    const processes: AppProcess[] = [];
    const fleet = new Fleet(app.name, release.version, processes);
    const log = this.deps.logs.get(app.name);
    for (const [type, command] of Object.entries(processTypes.types)) {
      const count = app.formation[type] ?? (type === 'web' ? 1 : 0);
      for (let i = 1; i <= count; i++) {
        const port = type === 'web' ? await this.deps.ports.next() : null;
        const env: Record<string, string> = { ...release.config, NODE_ENV: 'production', DYNO: `${type}.${i}` };
        if (port !== null) env.PORT = String(port);
        processes.push(
          new AppProcess(type, i, port, release.version, {
            app: app.name, kind: type === 'web' ? 'web' : 'worker', command, releaseDir, env,
            limits: app.limits, uid: app.uid, runtime,
          }, this.deps.apprunner, log, {
            onRoutable: () => this.reroute(fleet),
            onSpawn: (pid) => this.deps.registry.add(pid),
            onGone: (pid) => this.deps.registry.remove(pid),
          }),
        );
      }
    }
    if (!processes.some((p) => p.type === 'web')) {
      throw new Error('the formation runs no web process: scale web to at least 1 (ps:scale APP web=1)');
    }
    try {
      out.step(`Starting ${processes.map((p) => p.name).join(', ')} (${processTypes.origin})`);
      await Promise.all(processes.map((p) => p.start(check.bootTimeoutMs)));
      out.step(`Health check: GET ${check.path}${check.content ? ` containing '${check.content}'` : ''}`);
      await Promise.all(fleet.web().map((p) => checkHealth(p.port!, check, () => p.exitedEarly())));
      await Promise.all(fleet.web().map((p) => warmUp(p.port!, check.path)));
      for (const p of processes) p.markUp();
      out.line(`healthy on port${fleet.web().length > 1 ? 's' : ''} ${fleet.web().map((p) => p.port).join(', ')}`);
      return fleet;
    } catch (err) {
      await Promise.all(processes.map((p) => p.stop()));
      throw err;
    }
  }

  /**
   * Step 4: switch the route to the new fleet; resolves, with the fleet it replaced,
   * once that one gets no new requests. onSlowStart hears when the move is gradual.
   */
  async promote(fleet: Fleet, onSlowStart?: (ms: number) => void): Promise<Fleet | undefined> {
    const previous = this.live.get(fleet.app);
    this.live.set(fleet.app, fleet);
    if (previous) this.leaving.set(fleet.app, previous);
    try {
      const shift = this.deps.routes.shiftBackends(fleet.app, fleet.webPorts(), this.deps.slowStartMs);
      if (shift.gradual) onSlowStart?.(this.deps.slowStartMs);
      await shift.done;
    } finally {
      if (this.leaving.get(fleet.app) === previous) this.leaving.delete(fleet.app);
    }
    return previous;
  }

  /** Steps 5–6: wait for the old fleet's in-flight requests (and WebSockets, up to the drain timeout), then stop it. */
  async retire(fleet: Fleet): Promise<void> {
    await Promise.all(fleet.web().map((p) => this.deps.routes.drain(p.port!, this.deps.drainTimeoutMs)));
    await Promise.all(fleet.processes.map((p) => p.stop()));
  }

  /** Stops an app's serving fleet outright (destroy, shutdown). */
  async stopApp(app: string): Promise<void> {
    const fleet = this.live.get(app);
    this.live.delete(app);
    this.deps.routes.setBackends(app, []);
    if (fleet) await Promise.all(fleet.processes.map((p) => p.stop()));
  }

  private reroute(fleet: Fleet): void {
    const live = this.live.get(fleet.app);
    if (live === fleet) this.deps.routes.setBackends(fleet.app, fleet.webPorts());
    // A process of the release being moved away from went down: the new one takes everything now.
    else if (live && this.leaving.get(fleet.app) === fleet) this.deps.routes.setBackends(fleet.app, live.webPorts());
  }

  all(): Fleet[] {
    return [...this.live.values()];
  }
}
