// What Maestro 0.3's two RPCs do, on top of the new Maestro: register_app
// (claim a hostname) and restart_app (deploy the latest rsync upload through
// the restart pipeline). Scoped by the caller; transport-free, so the DNode
// session only translates calls and callbacks.
import { canReach, type Caller } from '../control/types.js';
import type { Maestro } from '../maestro/maestro.js';
import { normalizeHostname } from '../state/names.js';
import type { UploadFolders } from './upload-folders.js';
import { snapshotUpload } from './upload-snapshot.js';
import { UserError } from '../errors.js';

/** What both RPCs answer: each app the caller may see, mapped to its primary hostname. */
export type Applications = Record<string, string>;

export interface LegacyAppsOptions {
  maestro: Maestro;
  uploads: UploadFolders;
  /** Server log lines (who deployed what); no secrets. */
  log?: (line: string) => void;
}

export class LegacyApps {
  constructor(private readonly o: LegacyAppsOptions) {}

  applications(caller: Caller): Applications {
    const map: Applications = {};
    for (const app of this.o.maestro.apps.list()) {
      if (canReach(caller, app.name)) map[app.name] = this.o.maestro.apps.hosts(app)[0]!;
    }
    return map;
  }

  /** The app's name, if the caller may reach it; otherwise the same error as for an app that does not exist. */
  private reachable(caller: Caller, name: unknown): string {
    if (typeof name !== 'string' || name === '') throw new UserError('the app name must be a non-empty string, like "hello"');
    const shown = name.slice(0, 64);
    const missing = new UserError(`app '${shown}' does not exist: ask the server's administrator to create it (platformx apps:create ${shown})`);
    if (!canReach(caller, name)) throw missing;
    try {
      this.o.maestro.apps.get(name);
    } catch {
      throw missing;
    }
    return name;
  }

  /** Gives the app a hostname that is free or already its own; another app's or the platform's changes nothing. */
  private claimHostname(caller: Caller, app: string, hostname: unknown): void {
    if (hostname === undefined || hostname === null || hostname === '') return;
    if (typeof hostname !== 'string') throw new UserError('the hostname must be a string, like "www.example.com"');
    const host = normalizeHostname(hostname);
    if (this.o.maestro.apps.ownerOf(host) === app) return;
    // The same check as the admin's domains:add; other apps' names are said only if the caller may reach them.
    this.o.maestro.apps.addDomain(app, host, (other) => canReach(caller, other));
    this.o.log?.(`dnode: hostname '${host}' added to app '${app}'`);
  }

  /** register_app({name, hostname}). */
  register(caller: Caller, spec: unknown): Applications {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new UserError('register_app takes an object {name, hostname}, like {name: "hello", hostname: "hello.example.com"}');
    }
    const { name, hostname } = spec as { name?: unknown; hostname?: unknown };
    const app = this.reachable(caller, name);
    this.claimHostname(caller, app, hostname);
    return this.applications(caller);
  }

  /**
   * restart_app(name[, hostname]): deploys the latest upload as a new release and
   * resolves after the switch; on failure the serving release stays.
   */
  async restart(caller: Caller, name: unknown, hostname?: unknown): Promise<Applications> {
    const app = this.reachable(caller, name);
    this.claimHostname(caller, app, hostname);
    const { maestro, uploads } = this.o;
    if (!uploads.hasUpload(app)) {
      throw new UserError(`nothing was uploaded for app '${app}': rsync the bundle first (rsync -az --delete ./bundle/ git@HOST:${app}/)`);
    }
    const serving = maestro.apps.get(app).current !== null;
    try {
      const version = await maestro.deploy(app, {
        source: 'rsync',
        commit: null,
        description: 'rsync upload',
        by: caller.name,
        fill: (dir, out) =>
          uploads.exclusive(app, async () => {
            out.step('Copying the uploaded bundle');
            const r = await snapshotUpload(uploads.dir(app), dir);
            if (r.files === 0) throw new UserError(`the upload folder of '${app}' holds no files: rsync the bundle again`);
            out.line(`${r.files} files`);
            for (const l of r.skippedLinks.slice(0, 10)) out.line(`left out symlink ${l} (points outside the bundle)`);
          }),
      }, []);
      this.o.log?.(`dnode: restart_app '${app}' by '${caller.name}' released v${version}`);
    } catch (err) {
      const why = (err as Error).message;
      this.o.log?.(`dnode: restart_app '${app}' by '${caller.name}' failed: ${why}`);
      throw new UserError(`deploy of '${app}' failed: ${why}; ${serving ? 'the previous release keeps serving' : 'nothing was serving before'} (details: platformx logs ${app})`);
    }
    return this.applications(caller);
  }
}
