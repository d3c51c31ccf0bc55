import fs from 'node:fs';
import type { Maestro, PreparedRelease } from '../maestro/maestro.js';
import type { DataPaths } from '../state/paths.js';
import type { PushSessions } from './push-sessions.js';
import { readRef } from './repos.js';

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** What a git hook sends over the control socket. */
export interface HookRequest {
  hook: 'pre-receive' | 'post-receive';
  /** The hook's parent: the git-receive-pack process. */
  ppid: number;
  gitDir: string;
  refs: RefUpdate[];
  /** The quarantine variables of a pre-receive hook (GIT_OBJECT_DIRECTORY …). */
  gitEnv: Record<string, string>;
}

const DEPLOY_REFS = ['refs/heads/main', 'refs/heads/master'];
const ZERO = /^0+$/;
const ABANDON_AFTER_MS = 10 * 60_000;
const QUARANTINE_VARS = ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH'];

interface Pending {
  prepared: PreparedRelease;
  commit: string;
  unlock: () => void;
  timer: NodeJS.Timeout;
}

/**
 * A push deploys in two halves. pre-receive does everything that can fail
 * (checkout, install, build, start, health check) and rejects the push on
 * failure; post-receive promotes the checked release once git has updated the
 * ref. The app's deploy lock is held from one to the other.
 */
export class PushDeploys {
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly maestro: Maestro,
    private readonly sessions: PushSessions,
    private readonly paths: DataPaths,
  ) {
    sessions.onEnd((pid) => void this.abandon(pid, 'the push ended before the switch'));
  }

  /** Runs one hook; write() streams lines to the pusher. Resolves to the hook's exit code. */
  async handle(req: HookRequest, write: (line: string) => void): Promise<number> {
    const target = this.identify(req);
    if (!target) {
      write('!     this repository is not an app of this server');
      return 1;
    }
    return req.hook === 'pre-receive' ? this.preReceive(req, target, write) : this.postReceive(req, target.app, write);
  }

  /** The app and pusher: from the receive-pack process we spawned, else (a push on the machine itself) from the repo path. */
  private identify(req: HookRequest): { app: string; by: string } | null {
    const real = (p: string) => {
      try {
        return fs.realpathSync(p);
      } catch {
        return null;
      }
    };
    const gitDir = real(req.gitDir);
    const session = this.sessions.get(req.ppid);
    if (session) return gitDir === real(this.paths.repo(session.app)) ? { app: session.app, by: session.by } : null;
    const app = this.maestro.apps.list().find((a) => real(this.paths.repo(a.name)) === gitDir);
    return app ? { app: app.name, by: 'local' } : null;
  }

  private async preReceive(req: HookRequest, target: { app: string; by: string }, write: (l: string) => void): Promise<number> {
    const deploy = DEPLOY_REFS.map((r) => req.refs.find((u) => u.ref === r)).find((u) => u && !ZERO.test(u.new));
    for (const u of req.refs) {
      if (u !== deploy && !DEPLOY_REFS.includes(u.ref)) {
        write(`-----> ${u.ref.replace(/^refs\/heads\//, 'branch ')} stored, not deployed (only main or master deploys)`);
      }
    }
    if (!deploy) return 0;
    const gitEnv: Record<string, string> = {};
    for (const k of QUARANTINE_VARS) if (req.gitEnv[k]) gitEnv[k] = req.gitEnv[k];
    const { app, by } = target;
    const session = this.sessions.get(req.ppid);
    const unlock = await this.maestro.lock(app, { step: (t) => write(`-----> ${t}`) });
    try {
      // Another push may have landed while this one waited for the lock: refuse now, not after a whole build.
      const moved = await this.movedSince(app, deploy);
      if (moved) {
        unlock();
        write(`!     Push rejected: ${moved}`);
        return 1;
      }
      const prepared = await this.maestro.prepare(app, {
        source: 'git',
        commit: deploy.new,
        description: `git push ${deploy.new.slice(0, 7)}`,
        by,
        fill: this.maestro.gitSource(app, deploy.new, gitEnv),
      }, [write]);
      if (session && !this.sessions.connected(req.ppid, session)) {
        // Rejected, so git leaves the branch where it was: it must not point at code that never served.
        await this.maestro.discard(prepared, 'the pusher went away before the switch');
        unlock();
        return 1;
      }
      const timer = setTimeout(() => void this.abandon(req.ppid, 'no post-receive arrived'), ABANDON_AFTER_MS);
      timer.unref();
      this.pending.set(req.ppid, { prepared, commit: deploy.new, unlock, timer });
      return 0;
    } catch (err) {
      unlock();
      write(`!     Push rejected: ${(err as Error).message}`);
      write('!     The previous release keeps serving. Fix the problem and push again.');
      return 1;
    }
  }

  /** Why `u` is stale (its branch is no longer at the commit the pusher built on), or null when it is current. */
  private async movedSince(app: string, u: RefUpdate): Promise<string | null> {
    const now = await readRef(this.paths.repo(app), u.ref);
    if ((now ?? '') === (ZERO.test(u.old) ? '' : u.old)) return null;
    const branch = u.ref.replace(/^refs\/heads\//, '');
    const landed = now && this.maestro.apps.get(app).releases.filter((r) => r.commit === now && r.status === 'succeeded').at(-1);
    const what = now ? `${branch} moved to ${now.slice(0, 7)}` : `${branch} was deleted`;
    return `${what} while this push waited${landed ? ` (v${landed.version} was deployed)` : ''}: fetch, merge or rebase, then push again`;
  }

  private async postReceive(req: HookRequest, app: string, write: (l: string) => void): Promise<number> {
    const p = this.pending.get(req.ppid);
    if (!p || p.prepared.app !== app) return 0;
    this.pending.delete(req.ppid);
    clearTimeout(p.timer);
    try {
      if (!req.refs.some((u) => DEPLOY_REFS.includes(u.ref) && u.new === p.commit)) {
        await this.maestro.discard(p.prepared, 'git did not update the branch');
        write('!     git did not update the branch: the new release was not switched on');
        return 1;
      }
      await this.maestro.promote(p.prepared, [write]);
      return 0;
    } finally {
      p.unlock();
    }
  }

  private async abandon(pid: number, why: string): Promise<void> {
    const p = this.pending.get(pid);
    if (!p) return;
    this.pending.delete(pid);
    clearTimeout(p.timer);
    try {
      await this.maestro.discard(p.prepared, why);
    } finally {
      p.unlock();
    }
  }
}
