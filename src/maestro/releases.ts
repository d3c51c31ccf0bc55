import fs from 'node:fs';
import type { DataPaths } from '../state/paths.js';
import type { StateStore } from '../state/store.js';
import type { AppRecord, ReleaseRecord, ReleaseSource } from '../state/types.js';
import { UserError } from '../state/names.js';

export interface NewRelease {
  source: ReleaseSource;
  commit: string | null;
  description: string;
  by: string;
  config: Record<string, string>;
  /** Existing build folder to reuse (config change, rollback); null builds a new one. */
  build: string | null;
}

/** Release records: numbered vN, created as 'building', then succeeded (and current) or failed. */
export class Releases {
  constructor(private readonly store: StateStore, private readonly paths: DataPaths, private readonly keep: number) {}

  create(app: string, r: NewRelease): ReleaseRecord {
    return this.store.update((s) => {
      const a = s.apps[app];
      if (!a) throw new UserError(`app '${app}' does not exist`);
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
      };
      a.releases.push(record);
      return record;
    });
  }

  /** Marks a release failed; removes its build folder if it made one. */
  fail(app: string, version: number, why: string): void {
    const record = this.store.update((s) => {
      const r = s.apps[app]?.releases.find((x) => x.version === version);
      if (r) {
        r.status = 'failed';
        r.description = `${r.description} (failed: ${why})`.slice(0, 300);
      }
      return r;
    });
    if (record && record.build === `v${version}`) this.removeBuild(app, record.build);
  }

  /** Records the switch: the release is current. Then prunes old builds beyond `keep`. */
  succeed(app: string, version: number): void {
    this.store.update((s) => {
      const a = s.apps[app];
      const r = a?.releases.find((x) => x.version === version);
      if (!a || !r) return;
      r.status = 'succeeded';
      a.current = version;
    });
    this.pruneBuilds(app);
  }

  get(app: AppRecord, version: number): ReleaseRecord | undefined {
    return app.releases.find((r) => r.version === version);
  }

  current(app: AppRecord): ReleaseRecord | undefined {
    return app.current === null ? undefined : this.get(app, app.current);
  }

  /** Builds still on disk: the newest `keep` successful builds, plus whatever is current. */
  private pruneBuilds(app: string): void {
    const a = this.store.get().apps[app];
    if (!a) return;
    const builds: string[] = [];
    for (const r of [...a.releases].reverse()) {
      if (r.status === 'succeeded' && r.build === `v${r.version}` && !builds.includes(r.build)) builds.push(r.build);
    }
    const current = this.current(a)?.build;
    for (const build of builds.slice(this.keep)) {
      if (build !== current) this.removeBuild(app, build);
    }
  }

  buildExists(app: string, build: string): boolean {
    return fs.existsSync(this.paths.build(app, build));
  }

  private removeBuild(app: string, build: string): void {
    fs.rmSync(this.paths.build(app, build), { recursive: true, force: true });
  }

  /**
   * After a crash: releases still 'building' never became current; mark them
   * failed and remove their half-made folders.
   */
  recover(): string[] {
    const recovered: string[] = [];
    for (const a of Object.values(this.store.get().apps)) {
      for (const r of a.releases) {
        if (r.status === 'building') {
          this.fail(a.name, r.version, 'interrupted by a server stop');
          recovered.push(`${a.name} v${r.version}`);
        }
      }
    }
    return recovered;
  }
}
