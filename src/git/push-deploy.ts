import fs from 'node:fs';
import { crashPoint } from '../crash/crash-point.js';
import type { Maestro } from '../maestro/maestro.js';
import type { DataPaths } from '../state/paths.js';
import { PushLife } from './push-life.js';
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

/**
 * A push deploys in two halves. pre-receive does everything that can fail
 * (checkout, install, build, start, health check) and rejects the push on
 * failure; post-receive promotes the checked release once git has updated the
 * ref. The app's deploy lock is held from one to the other: push-life.ts says
 * how each push can end.
 */
export class PushDeploys {
  /** Deploying pushes by receive-pack pid (the hooks' parent), until they end. */
  private readonly lives = new Map<number, PushLife>();

  constructor(
    private readonly maestro: Maestro,
    private readonly sessions: PushSessions,
    private readonly paths: DataPaths,
  ) {
    sessions.onEnd((pid) => void this.lives.get(pid)?.abandon('the push ended before the switch'));
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
    const life = new PushLife({ abandonAfterMs: ABANDON_AFTER_MS, onEnd: () => this.lives.get(req.ppid) === life && this.lives.delete(req.ppid) });
    this.lives.set(req.ppid, life);
    life.locked(await this.maestro.lock(app, { step: (t) => write(`-----> ${t}`) }));
    try {
      // Another push may have landed while this one waited for the lock: refuse now, not after a whole build.
      const moved = await this.movedSince(app, deploy);
      if (moved) {
        life.refuse();
        write(`!     Push rejected: ${moved}`);
        return 1;
      }
      const prepared = await this.maestro.prepare(app, {
        source: 'git',
        commit: deploy.new,
        description: `git push ${deploy.new.slice(0, 7)}`,
        by,
        ref: { name: deploy.ref, old: deploy.old },
        fill: this.maestro.gitSource(app, deploy.new, gitEnv),
      }, [write]);
      // A pusher that hung up is rejected, so git leaves the branch where it was: it must not point at code that never served.
      const state = await life.park({
        app,
        commit: deploy.new,
        promote: (w) => this.maestro.promote(prepared, [w]),
        discard: (why) => this.maestro.discard(prepared, why),
      }, !session || this.sessions.connected(req.ppid, session));
      return state === 'parked' ? 0 : 1;
    } catch (err) {
      if (life.state === 'preparing') life.refuse();
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
    const landed = now && this.maestro.releases.list(app).filter((r) => r.commit === now && r.status === 'succeeded').at(-1);
    const what = now ? `${branch} moved to ${now.slice(0, 7)}` : `${branch} was deleted`;
    return `${what} while this push waited${landed ? ` (v${landed.version} was deployed)` : ''}: fetch, merge or rebase, then push again`;
  }

  private async postReceive(req: HookRequest, app: string, write: (l: string) => void): Promise<number> {
    crashPoint('post-receive');
    const life = this.lives.get(req.ppid);
    const parked = life?.parked;
    if (!life || !parked || parked.app !== app) return 0;
    if (!req.refs.some((u) => DEPLOY_REFS.includes(u.ref) && u.new === parked.commit)) {
      await life.abandon('git did not update the branch');
      write('!     git did not update the branch: the new release was not switched on');
      return 1;
    }
    await life.promote(write);
    return 0;
  }
}
