// Which Node each app builds and runs on. A new build takes package.json's
// engines.node (or the server's own Node without one); the version is kept on
// the release record, and every release reusing that build (a config change, a
// rollback) records it again, so a restart or a server start runs it on the same Node.
import type { StateStore } from '../state/store.js';
import type { AppRecord, ReleaseRecord } from '../state/types.js';
import { chooseNode, enginesNode, nodePackageName } from './node-range.js';
import { NodeInstaller } from './node-installer.js';
import { NpmRegistry, RegistryError } from './npm-registry.js';
import { RuntimeStore, type RuntimeInfo } from './runtime-store.js';

/** An installed runtime a build or process runs on: its bin/ goes first on PATH (and into the sandbox, read-only). */
export interface NodeRuntime {
  version: string;
  nodeDir: string;
  /**
   * For npm in builds: the server's global npmrc (registry, cafile). npm looks for it
   * under the prefix of the node that runs it, which for a runtime is DATA/runtimes/<v>.
   */
  npmEnv: Record<string, string>;
}

export interface RuntimeOutput {
  step(text: string): void;
  line(text: string): void;
}

/** What the runtimes read and write of the release records (Maestro's Releases). */
export interface ReleaseRecords {
  list(app: string): readonly ReleaseRecord[];
  setNode(app: string, version: number, node: string): void;
  buildExists(app: string, build: string): boolean;
}

export interface AppRuntimesOptions {
  store: StateStore;
  releases: ReleaseRecords;
  /** DATA/runtimes. */
  dir: string;
}

export interface RuntimeUse extends RuntimeInfo {
  /** Apps whose serving release runs on it. */
  apps: string[];
  /** Apps with only kept builds (rollback targets) on it. */
  builds: string[];
}

export class AppRuntimes {
  readonly installed: RuntimeStore;
  private readonly installer: NodeInstaller;
  /** The registry npm is configured with (a mirror set in .npmrc included). */
  private readonly registry = new NpmRegistry();
  /** Versions picked by deploys not yet recorded on their release: prune leaves them. */
  private readonly held = new Map<string, number>();

  constructor(private readonly o: AppRuntimesOptions) {
    this.installed = new RuntimeStore(o.dir);
    this.installer = new NodeInstaller(this.registry, this.installed);
  }

  /**
   * Picks the Node for a new build from its package.json, installs it when it is
   * not yet, says so in the deploy output and records it on the release. Throws
   * (the push is refused) for a range nothing satisfies, or a registry that cannot
   * be reached for a version not installed. Undefined: the server's own Node.
   */
  async forBuild(app: string, version: number, pkg: unknown, out: RuntimeOutput): Promise<NodeRuntime | undefined> {
    const range = enginesNode(pkg);
    if (range === null) {
      out.step(`Using Node ${process.versions.node} (the server's own: package.json sets no engines.node)`);
      return undefined;
    }
    let served: string[] | { unreachable: string };
    try {
      served = Object.keys(await this.registry.versions(nodePackageName()));
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      served = { unreachable: err.message };
    }
    const choice = chooseNode(range, served, this.installed.list().map((i) => i.node));
    out.step(`Using Node ${choice.version} (engines.node ${JSON.stringify(range)})`);
    if (choice.offline) out.line(`${choice.offline}: using the installed ${choice.version}`);
    this.hold(choice.version, 1);
    try {
      const info = await this.installer.ensure(choice.version, (l) => out.line(l));
      out.line(this.installer.describeNpm(info));
      this.o.releases.setNode(app, version, choice.version);
      return await this.runtime(info);
    } finally {
      this.hold(choice.version, -1);
    }
  }

  /**
   * The runtime a build runs on (installed again if it went missing), or undefined
   * for the server's own Node. With `record`, a new release reusing the build
   * (config change, rollback) records it too.
   */
  async forRelease(app: string, build: string, record?: number): Promise<NodeRuntime | undefined> {
    const version = this.nodeOfBuild(app, build);
    if (!version) return undefined;
    const info = await this.installer.ensure(version);
    if (record !== undefined) this.o.releases.setNode(app, record, version);
    return this.runtime(info);
  }

  private async runtime(info: RuntimeInfo): Promise<NodeRuntime> {
    const { globalconfig } = await this.registry.npmConfig();
    return {
      version: info.node,
      nodeDir: this.installed.nodeDir(info.node),
      npmEnv: globalconfig ? { npm_config_globalconfig: globalconfig } : {},
    };
  }

  /** The Node a release (the current one by default) runs on, for apps:info and ps. */
  nodeOf(app: AppRecord, release: number | null = app.current): { version: string; server: boolean } {
    const version = this.o.releases.list(app.name).find((r) => r.version === release)?.node;
    return version ? { version, server: false } : { version: process.versions.node, server: true };
  }

  /** Installed runtimes with the apps that run on each. */
  list(): RuntimeUse[] {
    const used = this.uses();
    return this.installed.list().map((info) => {
      const u = used.get(info.node);
      const apps = [...(u?.serving ?? [])].sort();
      return { ...info, apps, builds: [...(u?.kept ?? [])].filter((a) => !apps.includes(a)).sort() };
    });
  }

  /** Removes every runtime no app runs on and no kept build needs; resolves to what went. */
  prune(): RuntimeInfo[] {
    const used = this.uses();
    const removed: RuntimeInfo[] = [];
    for (const info of this.installed.list()) {
      if (used.has(info.node) || this.held.has(info.node)) continue;
      this.installed.remove(info.node);
      removed.push(info);
    }
    return removed;
  }

  /** Per Node version: apps serving on it, and apps with a build on disk made for it. */
  private uses(): Map<string, { serving: Set<string>; kept: Set<string> }> {
    const used = new Map<string, { serving: Set<string>; kept: Set<string> }>();
    for (const app of Object.values(this.o.store.get().apps)) {
      for (const r of this.o.releases.list(app.name)) {
        const version = r.node;
        if (!version || r.status === 'failed' || !this.o.releases.buildExists(app.name, r.build)) continue;
        const entry = used.get(version) ?? { serving: new Set(), kept: new Set() };
        used.set(version, entry);
        (r.version === app.current ? entry.serving : entry.kept).add(app.name);
      }
    }
    return used;
  }

  /** The Node of the newest release with that build (each release reusing a build records it again). */
  private nodeOfBuild(app: string, build: string): string | undefined {
    return [...this.o.releases.list(app)].reverse().find((r) => r.build === build && r.node)?.node;
  }

  private hold(version: string, delta: number): void {
    const n = (this.held.get(version) ?? 0) + delta;
    if (n > 0) this.held.set(version, n);
    else this.held.delete(version);
  }
}
