import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crashPoint } from '../crash/crash-point.js';
import type { DataPaths } from '../state/paths.js';
import { ReleaseHistory } from '../state/release-history.js';
import type { StateStore } from '../state/store.js';
import type { AppRecord, ReleaseRecord, ReleaseSource } from '../state/types.js';
import { UserError } from '../errors.js';


export interface NewRelease {
  source: ReleaseSource;
  commit: string | null;
  description: string;
  by: string;
  config: Record<string, string>;
  /** Existing build folder to reuse (config change, rollback); null builds a new one. */
  build: string | null;
  /** A git push: the branch it moves and the commit it had before, so a crash can put it back. */
  ref?: { name: string; old: string };
}

/** Folders of builds being deleted start with this: renamed first, so a build folder is whole or absent. */
const REMOVING = '.removing-';

/**
 * Release records: numbered vN, created as 'building', then succeeded (and
 * current) or failed. Each app's records live in its own history file
 * (`ReleaseHistory`); which release is current, and its config, live in state.
 */
export class Releases {
  private readonly histories = new Map<string, ReleaseHistory>();

  constructor(
    private readonly store: StateStore,
    private readonly paths: DataPaths,
    private readonly keep: number,
    private readonly keepRecords = 100,
  ) {
    this.migrate();
  }

  /** Records of an app, oldest first (the newest `--keep-releases`). */
  list(app: string): readonly ReleaseRecord[] {
    return this.history(app).list();
  }

  /** The app is gone (its folder with its history): forget the cached history. */
  forget(app: string): void {
    this.histories.delete(app);
  }

  private history(app: string): ReleaseHistory {
    let h = this.histories.get(app);
    if (!h) {
      h = new ReleaseHistory(this.paths.appDir(app), this.keepRecords);
      this.histories.set(app, h);
    }
    return h;
  }

  /** State written before release histories held its apps' records: move them out, once. */
  private migrate(): void {
    for (const a of Object.values(this.store.get().apps) as Array<AppRecord & { releases?: ReleaseRecord[]; nextVersion?: number }>) {
      if (!a.releases) continue;
      const records = a.releases;
      const next = a.nextVersion ?? (records.at(-1)?.version ?? 0) + 1;
      // History first: a crash before the state update just repeats this.
      this.history(a.name).update((d) => {
        d.records = structuredClone(records);
        d.nextVersion = next;
      });
      this.store.update((s) => {
        const x = s.apps[a.name] as typeof a;
        delete x.releases;
        delete x.nextVersion;
      });
    }
  }

  create(app: string, r: NewRelease): ReleaseRecord {
    if (!this.store.get().apps[app]) throw new UserError(`app '${app}' does not exist`);
    return this.history(app).update((a) => {
      const version = a.nextVersion++;
      const record: ReleaseRecord = {
        version,
        build: r.build ?? `v${version}`,
        source: r.source,
        commit: r.commit,
        description: r.description,
        by: r.by,
        createdAt: new Date().toISOString(),
        status: 'building',
        config: r.config,
        ownBuild: r.build === null,
        ...(r.ref ? { ref: r.ref } : {}),
      };
      a.records.push(record);
      return record;
    });
  }

  /** Marks a release failed; removes its build folder if it made one. */
  fail(app: string, version: number, why: string): void {
    const record = this.history(app).update((d) => {
      const r = d.records.find((x) => x.version === version);
      if (r) {
        r.status = 'failed';
        r.description = `${r.description} (failed: ${why})`.slice(0, 300);
      }
      return r;
    });
    if (record && ownsBuild(record)) this.removeBuild(app, record.build);
  }

  /**
   * Records the switch: the release is current, and `live` applies what it makes
   * true (its config) in the same write, so a crash cannot leave one without the
   * other. Then prunes old builds beyond `keep`.
   */
  succeed(app: string, version: number, live?: (a: AppRecord) => void): void {
    // The state write is the commit point: a release that is current counts as
    // succeeded even if a crash came before its record said so (see recover).
    this.store.update((s) => {
      const a = s.apps[app];
      if (!a || !this.get(a, version)) return;
      a.current = version;
      live?.(a);
    });
    crashPoint('release-succeeded');
    this.markSucceeded(app, version);
    this.pruneBuilds(app);
  }

  private markSucceeded(app: string, version: number): void {
    this.history(app).update((d) => {
      const r = d.records.find((x) => x.version === version);
      if (r) r.status = 'succeeded';
    });
  }

  /** Records the Node version (engines.node) a release's build runs on. */
  setNode(app: string, version: number, node: string): void {
    this.history(app).update((d) => {
      const r = d.records.find((x) => x.version === version);
      if (r) r.node = node;
    });
  }

  get(app: AppRecord, version: number): ReleaseRecord | undefined {
    return this.list(app.name).find((r) => r.version === version);
  }

  current(app: AppRecord): ReleaseRecord | undefined {
    return app.current === null ? undefined : this.get(app, app.current);
  }

  /** Builds still on disk: the newest `keep` successful builds, plus whatever is current. */
  private pruneBuilds(app: string): void {
    const a = this.store.get().apps[app];
    if (!a) return;
    const builds: string[] = [];
    for (const r of [...this.list(app)].reverse()) {
      if (r.status === 'succeeded' && ownsBuild(r) && !builds.includes(r.build)) builds.push(r.build);
    }
    const current = this.current(a)?.build;
    for (const build of builds.slice(this.keep)) {
      if (build !== current) this.removeBuild(app, build);
    }
  }

  buildExists(app: string, build: string): boolean {
    return fs.existsSync(this.paths.build(app, build));
  }

  /** Renames the build out of the way first: a crash mid-delete leaves no half build under its name. */
  private removeBuild(app: string, build: string): void {
    const aside = path.join(this.paths.releasesDir(app), `${REMOVING}${build}-${randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(this.paths.build(app, build), aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    crashPoint('build-moved-aside');
    fs.rmSync(aside, { recursive: true, force: true });
  }

  /**
   * After a crash: releases still 'building' never became current; they are marked
   * failed. Every folder that no release may use is removed again (builds of failed
   * releases, builds moved aside for deletion, builds beyond `keep`), so a second
   * crash during recovery leaves nothing behind for good.
   */
  recover(): Array<{ app: string; release: ReleaseRecord }> {
    const interrupted: Array<{ app: string; release: ReleaseRecord }> = [];
    for (const a of Object.values(this.store.get().apps)) {
      for (const r of this.list(a.name)) {
        if (r.status !== 'building') continue;
        if (r.version === a.current) this.markSucceeded(a.name, r.version);
        else {
          this.fail(a.name, r.version, 'interrupted by a server stop');
          interrupted.push({ app: a.name, release: { ...r, status: 'failed' } });
        }
      }
      for (const r of this.list(a.name)) {
        if (r.status === 'failed' && ownsBuild(r) && this.buildExists(a.name, r.build)) this.removeBuild(a.name, r.build);
      }
      this.removeAside(a.name);
      this.pruneBuilds(a.name);
    }
    return interrupted;
  }

  private removeAside(app: string): void {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.paths.releasesDir(app));
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith(REMOVING)) fs.rmSync(path.join(this.paths.releasesDir(app), n), { recursive: true, force: true });
    }
  }
}

/** A release made its own build folder (a push or upload), rather than reusing another's (config, rollback). */
function ownsBuild(r: ReleaseRecord): boolean {
  // Records made before the fact was recorded: a build of its own is named after the release.
  return r.ownBuild ?? r.build === `v${r.version}`;
}
