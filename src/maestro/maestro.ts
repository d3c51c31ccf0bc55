import type { Apprunner } from '../apprunner/apprunner.js';
import type { AppLogs } from '../logs/app-log.js';
import type { RouteControl } from '../proxy/types.js';

import type { DataPaths } from '../state/paths.js';
import type { StateStore } from '../state/store.js';
import type { AppRecord, Limits, ReleaseRecord } from '../state/types.js';
import { AppRegistry } from './app-registry.js';
import type { AppTriggers } from './app-triggers.js';
import { buildRelease } from './build.js';
import { crashPoint } from '../crash/crash-point.js';
import { checkoutCommit, restoreRef } from './checkout.js';
import { DeployLocks } from './deploy-lock.js';
import { DeployOutput } from './deploy-output.js';
import { MaestroEvents } from './maestro-events.js';
import type { Fleet } from './fleet.js';
import { PortAllocator } from './port-allocator.js';
import { DeployScripts } from './deploy-scripts.js';
import { detectProcessTypes, readPackageJson } from './process-types.js';
import { AppRuntimes, type NodeRuntime } from '../runtimes/app-runtimes.js';
import { Releases, type NewRelease } from './releases.js';
import { RestartPipeline, type FleetPlan } from './restart-pipeline.js';
import { runStep } from './run-step.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HostedProcess, ProcessHost } from '../dataplane/client.js';
import { UserError } from '../errors.js';

export interface MaestroOptions {
  store: StateStore;
  paths: DataPaths;
  routes: RouteControl;
  /** Build steps and release commands: they end with the deploy. */
  apprunner: Apprunner;
  /** App processes: they run in the data plane and outlive this server. */
  processes: ProcessHost;
  logs: AppLogs;
  baseDomain: string;
  keepBuilds: number;
  keepReleases?: number;
  drainTimeoutMs: number;
  bootTimeoutMs: number;
  slowStartMs: number;
  /** What git, SSH and others do when an app is created or destroyed. */
  triggers: AppTriggers;
}

/** Where start-up reports go (the server log), with the app and release as fields. */
export type BootLog = (line: string, fields?: { level?: 'warn' | 'error'; app?: string; release?: number }) => void;

/** What a deploy builds from: fills a new, empty release folder with the app's code. */
export type SourceFiller = (dir: string, out: DeployOutput) => Promise<void>;

export interface DeployRequest extends Omit<NewRelease, 'build' | 'config'> {
  /** New code to build; null reuses `reuseBuild`. */
  fill: SourceFiller | null;
  reuseBuild?: string;
  config?: Record<string, string>;
  /** What the release makes true once it is live (the new config), written with it in one update. */
  live?: (app: AppRecord) => void;
}

/** A release that is built, started and healthy, waiting for its switch. */
export interface PreparedRelease {
  app: string;
  version: number;
  fleet: Fleet;
  live?: (app: AppRecord) => void;
  /** app.json deploy scripts of a new build: postdeploy runs after the switch. */
  scripts?: DeployScripts;
}

/**
 * The application controller. Owns apps and releases and runs every change that
 * alters what serves through one path: prepare (build, start, health check:
 * may fail, the old release keeps serving) then promote (switch, drain, stop).
 */
export class Maestro {
  readonly apps: AppRegistry;
  readonly releases: Releases;
  readonly pipeline: RestartPipeline;
  readonly locks = new DeployLocks();
  /** Deploy output lines and release outcomes, for the dashboard and metrics. */
  readonly events = new MaestroEvents();
  /** The Node each build runs on (engines.node), installed in DATA/runtimes. */
  readonly runtimes: AppRuntimes;

  constructor(private readonly o: MaestroOptions) {
    this.apps = new AppRegistry(o.store, o.paths, o.routes, o.baseDomain, o.apprunner.isolation === 'sandbox', o.triggers);
    this.releases = new Releases(o.store, o.paths, o.keepBuilds, o.keepReleases);
    this.runtimes = new AppRuntimes({ store: o.store, releases: this.releases, dir: o.paths.runtimes });
    this.pipeline = new RestartPipeline({
      processes: o.processes,
      ports: new PortAllocator(),
      routes: o.routes,
      logs: o.logs,
      drainTimeoutMs: o.drainTimeoutMs,
      bootTimeoutMs: o.bootTimeoutMs,
      slowStartMs: o.slowStartMs,
    });
  }

  /** An output that also puts each step header into the app's log as platform[deploy]. */
  output(app: string, version: number | null, sinks: ((line: string) => void)[] = []): DeployOutput {
    const log = this.o.logs.get(app);
    const out = new DeployOutput(version === null ? null : this.o.paths.buildLog(app, version), [
      ...sinks,
      (line) => void this.events.emit('output', app, line),
      (line) => {
        if (line.startsWith('----->')) log.write('platform[deploy]', line.slice(7));
      },
    ]);
    return out;
  }

  /** Takes the app's deploy lock, telling the caller when it has to wait for another deploy. */
  lock(app: string, out: { step(t: string): void }): Promise<() => void> {
    return this.locks.acquire(app, () => out.step(`Another deploy of '${app}' is running; waiting for it to finish`));
  }

  /**
   * Builds and starts a new release beside the serving one. The caller holds the
   * app's lock. On failure the release is marked failed and nothing serves differently.
   */
  async prepare(appName: string, req: DeployRequest, sinks: ((line: string) => void)[]): Promise<PreparedRelease> {
    const app = this.apps.get(appName);
    const release = this.releases.create(appName, {
      source: req.source,
      commit: req.commit,
      description: req.description,
      by: req.by,
      config: req.config ?? app.config,
      build: req.fill ? null : (req.reuseBuild ?? null),
      ref: req.ref,
    });
    const out = this.output(appName, release.version, sinks);
    if (app.notice) {
      out.step(`Note: ${app.notice}`);
      this.o.store.update((s) => void delete s.apps[appName]!.notice);
    }
    const dir = this.o.paths.build(appName, release.build);
    try {
      const fresh = this.ensureUser(appName);
      let runtime: NodeRuntime | undefined;
      if (req.fill) {
        out.step(`Preparing release v${release.version} (${req.description})`);
        fs.mkdirSync(path.dirname(dir), { recursive: true });
        await req.fill(dir, out);
        runtime = await this.runtimes.forBuild(appName, release.version, readPackageJson(dir), out);
        await this.o.apprunner.claim(dir, fresh.uid);
        const serving = this.releases.current(fresh);
        const previous = serving && this.releases.buildExists(appName, serving.build)
          ? { dir: this.o.paths.build(appName, serving.build), version: serving.version } : null;
        const serverWrote = await buildRelease({ app: fresh, dir, npmCache: await this.npmCache(fresh), apprunner: this.o.apprunner, out, previous, runtime });
        // Files the server copied in (a reused node_modules) belong to the app too.
        if (serverWrote) await this.o.apprunner.claim(dir, fresh.uid);
      } else if (!this.releases.buildExists(appName, release.build)) {
        throw new UserError(`the build of ${release.build} was removed (only the newest builds are kept): deploy again instead`);
      } else {
        out.step(`Preparing release v${release.version} (${req.description}) from the build of ${release.build}`);
        runtime = await this.runtimes.forRelease(appName, release.build, release.version);
      }
      const processTypes = detectProcessTypes(dir, appName);
      const step = {
        app: appName, kind: 'release' as const, releaseDir: dir,
        env: { ...release.config, NODE_ENV: 'production' }, limits: fresh.limits, uid: fresh.uid, runtime,
      };
      // Only a new build runs them: a config change or rollback reuses a build its predeploy already ran in.
      const scripts = req.fill ? DeployScripts.read(this.o.apprunner, step) ?? undefined : undefined;
      await scripts?.predeploy(out);
      if (processTypes.release) {
        out.step('Running release command');
        await runStep(this.o.apprunner, { ...step, command: processTypes.release }, out, 'the release command');
      }
      const fleet = await this.pipeline.start({ app: fresh, release, releaseDir: dir, processTypes, runtime }, out);
      return { app: appName, version: release.version, fleet, live: req.live, scripts };
    } catch (err) {
      const why = (err as Error).message;
      out.step(`Deploy failed: ${why}`);
      this.releases.fail(appName, release.version, why);
      this.ended(appName, release.version, 'failed');
      this.o.logs.get(appName).write('platform[deploy]', `release v${release.version} failed: ${why}`);
      throw err;
    } finally {
      out.close();
    }
  }

  /** Switches traffic to a prepared release and retires the one it replaces. */
  async promote(p: PreparedRelease, sinks: ((line: string) => void)[]): Promise<void> {
    const out = this.output(p.app, p.version, sinks);
    const previous = await this.switchTo(p.fleet, out, () => {
      crashPoint('release-switched');
      this.releases.succeed(p.app, p.version, p.live);
    });
    this.ended(p.app, p.version, 'succeeded');
    const app = this.apps.get(p.app);
    out.step(`Released v${p.version}: http://${this.apps.hosts(app)[0]}/`);
    await p.scripts?.postdeploy(out, `v${p.version}`);
    out.close();
    if (previous) {
      void this.pipeline.retire(previous).then(
        () => this.o.logs.get(p.app).write('platform[deploy]', `v${previous.release} drained and stopped`),
        (err: Error) => this.o.logs.get(p.app).write('platform[deploy]', `stopping v${previous.release} failed: ${err.message}`),
      );
    }
  }

  /**
   * The one switch every path makes (deploy, restart, server start): traffic to the
   * new fleet (gradually for a busy app, saying so), then `record` stores what is
   * now live in the same tick. Resolves to the fleet it replaced, still to retire.
   */
  private async switchTo(fleet: Fleet, out: DeployOutput | null, record: () => void): Promise<Fleet | undefined> {
    const previous = await this.pipeline.promote(fleet, out ? slowStartStep(out, `v${fleet.release}`) : undefined);
    record();
    return previous;
  }

  /** Stops a prepared release that will not be promoted (abandoned push). */
  async discard(p: PreparedRelease, why: string): Promise<void> {
    await Promise.all(p.fleet.processes.map((x) => x.stop()));
    this.releases.fail(p.app, p.version, why);
    this.ended(p.app, p.version, 'failed');
    this.o.logs.get(p.app).write('platform[deploy]', `release v${p.version} discarded: ${why}`);
  }

  private ended(app: string, version: number, outcome: 'succeeded' | 'failed'): void {
    const r = this.releases.list(app).find((x) => x.version === version);
    if (!r) return;
    const seconds = Math.max(0, (Date.now() - Date.parse(r.createdAt)) / 1000);
    // A listener's failure is its own: the deploy has already happened.
    try {
      this.events.emit('release', { app, version, source: r.source, outcome, seconds });
    } catch { /* ignored */ }
  }

  /** The whole pipeline in one go, under the app's lock: for deploy, rollback, config and legacy restarts. */
  async deploy(appName: string, req: DeployRequest, sinks: ((line: string) => void)[]): Promise<number> {
    this.apps.get(appName);
    const unlock = await this.lock(appName, this.output(appName, null, sinks));
    try {
      const prepared = await this.prepare(appName, req, sinks);
      await this.promote(prepared, sinks);
      return prepared.version;
    } finally {
      unlock();
    }
  }

  /** A SourceFiller that checks out a commit of the app's repo. */
  gitSource(appName: string, commit: string, gitEnv: Record<string, string> = {}): SourceFiller {
    return async (dir, out) => {
      out.step(`Checking out ${commit.slice(0, 7)}`);
      await checkoutCommit(this.o.paths.repo(appName), commit, dir, this.o.apprunner, gitEnv);
    };
  }

  /**
   * Restarts the current release with zero downtime: a new fleet, switch, drain
   * the old one. With a change of formation or limits, the new fleet runs with it,
   * and it is stored once the new processes are healthy.
   */
  async restart(appName: string, sinks: ((line: string) => void)[], change: Partial<Pick<AppRecord, 'formation' | 'limits'>> = {}): Promise<void> {
    this.apps.get(appName);
    const out = this.output(appName, null, sinks);
    const unlock = await this.lock(appName, out);
    const save = () => this.o.store.update((s) => void Object.assign(s.apps[appName]!, change));
    try {
      const app = { ...this.apps.get(appName), ...change };
      const release = this.releases.current(app);
      if (!release && Object.keys(change).length) {
        save();
        return;
      }
      if (!release) throw new UserError(`app '${appName}' has no release yet: push code first`);
      const fleet = await this.pipeline.start(await this.fleetPlan(app, release), out);
      const previous = await this.switchTo(fleet, out, save);
      out.step(`Restarted v${release.version}`);
      if (previous) await this.pipeline.retire(previous);
    } finally {
      unlock();
      out.close();
    }
  }

  /**
   * Server start: every app's current release serves again. Processes the data
   * plane still runs for it (a restart of this server, not of the machine) are
   * adopted as they are; the rest start a few at a time (one per core), most
   * recently deployed first, while the proxy answers 503 for apps not up yet.
   * Whatever else the data plane runs (an old release that was draining, a
   * release that never went live, a removed app) is drained and stopped.
   */
  async startAll(log: BootLog, hosted: HostedProcess[] = []): Promise<void> {
    await this.recoverInterrupted(log);
    const leftovers: HostedProcess[] = [];
    const replaced = new Map<string, HostedProcess[]>();
    const cold: Array<{ app: AppRecord; at: string; run: () => Promise<void> }> = [];
    const known = new Set(this.apps.list().map((a) => a.name));
    leftovers.push(...hosted.filter((h) => !known.has(h.meta.app)));
    for (const app of this.apps.list()) {
      this.o.routes.setHosts(app.name, this.apps.hosts(app));
      const mine = hosted.filter((h) => h.meta.app === app.name);
      const release = this.releases.current(app);
      const current = release ? mine.filter((h) => h.meta.release === release.version) : [];
      leftovers.push(...mine.filter((h) => !current.includes(h)));
      if (!release) {
        this.o.routes.setBackends(app.name, []);
        continue;
      }
      try {
        if (this.pipeline.adopt(await this.fleetPlan(this.ensureUser(app.name), release), current)) {
          log(`${app.name} v${release.version} kept running: ${current.map((h) => `${h.meta.type}.${h.meta.index} pid ${h.pid}`).join(', ')}`, { app: app.name, release: release.version });
          continue;
        }
      } catch {
        /* the cold start below says what is wrong */
      }
      // Processes of the release that do not fit its formation serve until the new fleet does.
      if (current.length) replaced.set(app.name, current);
      else this.o.routes.setBackends(app.name, []);
      cold.push({ app, at: release.createdAt, run: () => this.coldStart(app.name, log) });
    }
    await this.retireHosted(leftovers);
    cold.sort((a, b) => b.at.localeCompare(a.at));
    let started = 0;
    await runBounded(cold.map((c) => async () => {
      await c.run();
      if (started++ === 0) crashPoint('boot-first-app');
      await this.retireHosted(replaced.get(c.app.name) ?? []);
    }), Math.max(1, os.availableParallelism()));
  }

  /** What starting a release's processes needs: its build folder, process types and the Node its build was made for. */
  private async fleetPlan(app: AppRecord, release: ReleaseRecord): Promise<FleetPlan> {
    const releaseDir = this.o.paths.build(app.name, release.build);
    const runtime = await this.runtimes.forRelease(app.name, release.build);
    return { app, release, releaseDir, processTypes: detectProcessTypes(releaseDir, app.name), runtime };
  }

  private async coldStart(appName: string, log: BootLog): Promise<void> {
    const app = this.ensureUser(appName);
    const release = this.releases.current(app)!;
    const out = this.output(app.name, null);
    try {
      const fleet = await this.pipeline.start(await this.fleetPlan(app, release), out);
      await this.switchTo(fleet, null, () => {});
      log(`started ${app.name} v${release.version}`, { app: app.name, release: release.version });
    } catch (err) {
      log(`could not start ${app.name} v${release.version}: ${(err as Error).message}`, { level: 'error', app: app.name, release: release.version });
      this.o.logs.get(app.name).write('platform[boot]', `could not start v${release.version}: ${(err as Error).message}`);
    } finally {
      out.close();
    }
  }

  /** Drains (no new requests reach them once routes moved) and stops processes no release of this server owns. */
  private async retireHosted(procs: HostedProcess[]): Promise<void> {
    await Promise.all(procs.map(async (h) => {
      if (h.meta.port !== null) await this.o.routes.drain(h.meta.port, this.o.drainTimeoutMs);
      this.o.processes.signal(h, 'SIGTERM');
      const kill = setTimeout(() => this.o.processes.signal(h, 'SIGKILL'), 10_000);
      await h.exited;
      clearTimeout(kill);
    }));
  }

  /**
   * Releases a crash cut short never went live: they are marked failed, and a
   * branch their push had already moved is put back to the commit before it, so
   * the ref never runs ahead of what serves and pushing the same commit again
   * deploys it. The next deploy of the app says what happened.
   */
  private async recoverInterrupted(log: BootLog): Promise<void> {
    for (const { app, release: r } of this.releases.recover()) {
      let notice = `v${r.version} (${r.description}) was interrupted by a server stop and never went live`;
      if (r.ref && r.commit && await restoreRef(this.o.paths.repo(app), r.ref.name, r.ref.old, r.commit)) {
        const branch = r.ref.name.replace(/^refs\/heads\//, '');
        notice += `; ${branch} was put back to ${/^0+$/.test(r.ref.old) ? 'no commit' : r.ref.old.slice(0, 7)}: push ${r.commit.slice(0, 7)} again to deploy it`;
      }
      log(`${app}: ${notice}`, { level: 'warn', app, release: r.version });
      this.o.logs.get(app).write('platform[boot]', notice);
      this.o.store.update((s) => void (s.apps[app] && (s.apps[app].notice = notice)));
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.pipeline.all().map((f) => this.pipeline.stopApp(f.app)));
  }

  async destroy(appName: string): Promise<void> {
    this.apps.get(appName);
    const unlock = await this.locks.acquire(appName);
    try {
      await this.pipeline.stopApp(appName);
      this.o.logs.drop(appName);
      this.apps.destroy(appName);
      this.releases.forget(appName);
      this.o.apprunner.forget(appName);
    } finally {
      unlock();
    }
  }

  async setLimits(appName: string, limits: Limits, sinks: ((line: string) => void)[]): Promise<void> {
    await this.restart(appName, sinks, { limits });
  }

  /** Sets and unsets config vars; with restart, through a new zero-downtime release that must come up healthy first. */
  async setConfig(appName: string, set: Record<string, string>, unset: string[], restart: boolean, by: string, sinks: ((line: string) => void)[]): Promise<number | null> {
    const app = this.apps.get(appName);
    const config = { ...app.config, ...set };
    for (const k of unset) delete config[k];
    const current = this.releases.current(app);
    if (!restart || !current) {
      this.o.store.update((s) => void (s.apps[appName]!.config = config));
      return null;
    }
    const keys = [...Object.keys(set).map((k) => `set ${k}`), ...unset.map((k) => `unset ${k}`)].join(', ');
    // The description names keys only: values are secrets and never reach a log.
    return this.deploy(appName, {
      source: 'config', commit: current.commit, description: `config: ${keys}`, by, fill: null,
      reuseBuild: current.build, config, live: (a) => void (a.config = { ...config }),
    }, sinks);
  }

  /** Switches back to an earlier release's build and config, without rebuilding. */
  async rollback(appName: string, version: number | null, by: string, sinks: ((line: string) => void)[]): Promise<number> {
    const app = this.apps.get(appName);
    const target = version === null
      ? [...this.releases.list(appName)].reverse().find((r) => r.status === 'succeeded' && r.version !== app.current && this.releases.buildExists(appName, r.build) && (app.current === null || r.version < app.current))
      : this.releases.get(app, version);
    if (!target) {
      throw new UserError(version === null ? `app '${appName}' has no earlier good release to roll back to` : `app '${appName}' has no release v${version}: see 'platformx releases ${appName}'`);
    }
    if (target.status !== 'succeeded') throw new UserError(`v${target.version} never went live (${target.status}): pick a succeeded release`);
    if (!this.releases.buildExists(appName, target.build)) {
      throw new UserError(`the build of v${target.version} was removed (only the newest builds are kept): pick a newer release or deploy again`);
    }
    return this.deploy(appName, {
      source: 'rollback', commit: target.commit, description: `rollback to v${target.version}`, by, fill: null,
      reuseBuild: target.build, config: target.config,
      live: (a) => void (a.config = { ...target.config }),
    }, sinks);
  }

  buildLogPath(app: string, version: number): string {
    return this.o.paths.buildLog(app, version);
  }

  /**
   * Sandboxed apps run as their own system user, allocated once and kept in
   * state, so file ownership stays valid across restarts. Apps made before the
   * sandbox was on get theirs here.
   */
  private ensureUser(appName: string): AppRecord {
    const app = this.apps.get(appName);
    if (this.o.apprunner.isolation !== 'sandbox' || app.uid !== null) return app;
    return this.o.store.update((s) => {
      const a = s.apps[appName]!;
      a.uid = s.nextUid++;
      return a;
    });
  }

  /** One npm cache for all when unconfined; each sandboxed app its own, so no tenant can poison another's builds. */
  private async npmCache(app: AppRecord): Promise<string> {
    if (this.o.apprunner.isolation !== 'sandbox') return this.o.paths.npmCache;
    const dir = path.join(this.o.paths.appCache(app.name), 'npm');
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      await this.o.apprunner.claim(path.dirname(dir), app.uid);
    }
    return dir;
  }

  repoPath(app: string): string {
    return this.o.paths.repo(app);
  }
}

/** The deploy output's line for a gradual move, so a push that waits for it says why. */
function slowStartStep(out: { step(text: string): void }, release: string): (ms: number) => void {
  return (ms) => out.step(`Moving traffic to ${release} over ${ms / 1000} s (slow start: the app is busy)`);
}

/** Runs jobs with at most n at once. */
async function runBounded(jobs: Array<() => Promise<void>>, n: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => {
    while (next < jobs.length) await jobs[next++]!();
  }));
}
