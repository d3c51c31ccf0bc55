import type { HostedProcess, ProcessHost } from '../dataplane/client.js';
import type { AppLogs } from '../logs/app-log.js';
import type { RouteControl } from '../proxy/types.js';
import type { AppRecord, ReleaseRecord } from '../state/types.js';
import { AppProcess } from './app-process.js';
import type { DeployOutput } from './deploy-output.js';
import { Fleet } from './fleet.js';
import { checkHealth, readHealthCheck } from './health-check.js';
import { readUptime, stayUp } from './uptime-check.js';
import { warmUp } from './warm-up.js';
import type { PortAllocator } from './port-allocator.js';
import type { ProcessTypes } from './process-types.js';

export interface PipelineDeps {
  /** Runs the app processes (the data plane), so they outlive a server restart. */
  processes: ProcessHost;
  ports: PortAllocator;
  routes: RouteControl;
  logs: AppLogs;
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
    const { app, release, releaseDir, processTypes } = plan;
    const check = readHealthCheck(releaseDir, this.deps.bootTimeoutMs);
    const processes: AppProcess[] = [];
    const fleet = new Fleet(app.name, release.version, processes);
    const main = mainType(processTypes);
    for (const [type, count] of Object.entries(formationOf(app, processTypes))) {
      for (let i = 1; i <= count; i++) {
        processes.push(this.process(fleet, plan, type, i, type === 'web' ? await this.deps.ports.next() : null));
      }
    }
    if (processTypes.types.web && !processes.some((p) => p.type === 'web')) {
      throw new Error('the formation runs no web process: scale web to at least 1 (ps:scale APP web=1)');
    }
    if (processes.length === 0) throw new Error(`the formation runs no process: scale one up (ps:scale APP ${main}=1)`);
    const settled = processes.filter((p) => p.port === null);
    try {
      if (!processTypes.types.web) out.step(`No web process: starting ${processes.map((p) => p.name).join(', ')}`);
      out.step(`Starting ${processes.map((p) => p.name).join(', ')} (${processTypes.origin})`);
      await Promise.all(processes.map((p) => p.start(check.bootTimeoutMs)));
      if (fleet.web().length) out.step(`Health check: GET ${check.path}${check.content ? ` containing '${check.content}'` : ''}`);
      if (settled.length) out.step(`Health check: ${settled.map((p) => p.name).join(', ')} must stay up for ${uptimeText(releaseDir, settled)}`);
      await Promise.all([
        ...fleet.web().map(async (p) => {
          await checkHealth(p.port!, check, p);
          await warmUp(p.port!, check.path);
        }),
        ...settled.map((p) => stayUp(p, readUptime(releaseDir, p.type))),
      ]);
      for (const p of processes) p.markUp();
      if (fleet.web().length) out.line(`healthy on port${fleet.web().length > 1 ? 's' : ''} ${fleet.web().map((p) => p.port).join(', ')}`);
      if (settled.length) out.line(`${settled.map((p) => p.name).join(', ')} stayed up`);
      return fleet;
    } catch (err) {
      await Promise.all(processes.map((p) => p.stop()));
      throw err;
    }
  }

  /**
   * Takes over the processes a previous server left running for this release, if
   * they are exactly its formation (each type's count, web ports known); they
   * serve on without a restart. Null when they do not fit: start a fleet instead.
   */
  adopt(plan: FleetPlan, hosted: HostedProcess[]): Fleet | null {
    const want = formationOf(plan.app, plan.processTypes);
    const have: Record<string, number> = {};
    for (const h of hosted) have[h.meta.type] = (have[h.meta.type] ?? 0) + 1;
    const fits = Object.keys({ ...want, ...have }).every((t) => (want[t] ?? 0) === (have[t] ?? 0))
      && hosted.every((h) => h.meta.index >= 1 && h.meta.index <= (want[h.meta.type] ?? 0) && (h.meta.type === 'web') === (h.meta.port !== null));
    if (!fits || hosted.length === 0) return null;
    const processes: AppProcess[] = [];
    const fleet = new Fleet(plan.app.name, plan.release.version, processes);
    for (const h of hosted) {
      const p = this.process(fleet, plan, h.meta.type, h.meta.index, h.meta.port);
      p.adopt(h);
      processes.push(p);
    }
    this.live.set(fleet.app, fleet);
    this.deps.routes.setBackends(fleet.app, fleet.webPorts());
    return fleet;
  }

  private process(fleet: Fleet, plan: FleetPlan, type: string, i: number, port: number | null): AppProcess {
    const { app, release, releaseDir, processTypes, runtime } = plan;
    const env: Record<string, string> = { ...release.config, NODE_ENV: 'production', DYNO: `${type}.${i}` };
    if (port !== null) env.PORT = String(port);
    return new AppProcess(type, i, port, release.version, {
      app: app.name, kind: type === 'web' ? 'web' : 'worker', command: processTypes.types[type]!, releaseDir, env,
      limits: app.limits, uid: app.uid, port: port ?? undefined, runtime,
    }, this.deps.processes, this.deps.logs.get(app.name), { onRoutable: () => this.reroute(fleet) });
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
      // Nothing to warm up without web processes: switch at once.
      const shift = await this.deps.routes.shiftBackends(fleet.app, fleet.webPorts(), fleet.web().length ? this.deps.slowStartMs : 0);
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

/** "10 s", or each type's time when they differ. */
function uptimeText(dir: string, procs: { type: string }[]): string {
  const times = [...new Set(procs.map((p) => readUptime(dir, p.type) / 1000))];
  return times.length === 1 ? `${times[0]} s` : `${times.join(' / ')} s`;
}

/** One process of the main type unless scaled: web, or the Procfile's first type when there is no web. */
function mainType(types: ProcessTypes): string | undefined {
  return types.types.web ? 'web' : Object.keys(types.types)[0];
}

/** How many of each type run: the app's formation over the defaults. */
function formationOf(app: AppRecord, types: ProcessTypes): Record<string, number> {
  const main = mainType(types);
  const out: Record<string, number> = {};
  for (const type of Object.keys(types.types)) out[type] = app.formation[type] ?? (type === main ? 1 : 0);
  return out;
}
