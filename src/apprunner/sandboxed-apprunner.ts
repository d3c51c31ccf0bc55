import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { appEnvironment, type Apprunner } from './apprunner.js';
import { bubblewrapArgs, dropPrivilegesArgs, sandboxIdentity } from './bubblewrap-args.js';
import { CgroupLimits, type ProcessCgroups } from './cgroup-limits.js';
import { niceDown } from './deploy-priority.js';
import { sandboxSeccompFilter } from './sandbox-seccomp.js';
import { descendants, signalQuietly } from './process-tree.js';
import type { Isolation, RunSpec } from './types.js';

const run = promisify(execFile);
const IDENTITY_FDS = [3, 4] as const;
const SECCOMP_FD = 5;
const SECCOMP = sandboxSeccompFilter();

// Joins the cgroups named before `--` (its own pid, so everything it execs and
// forks stays inside), then execs the rest. A fixed script: only our paths and
// argv words reach it as arguments, never text a client sent.
const JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"';

/**
 * Runs every app process and build step as the app's own user inside
 * bubblewrap, in the app's cgroups, with its file and process limits.
 */
export class SandboxedApprunner implements Apprunner {
  readonly isolation: Isolation = 'sandbox';
  readonly cgroups: CgroupLimits;
  /** bwrap pids of processes still running, with their groups: signals go only to these. */
  private readonly live = new Map<number, ProcessCgroups>();

  constructor(dataDir: string) {
    this.cgroups = new CgroupLimits(createHash('sha256').update(dataDir).digest('hex').slice(0, 8));
  }

  spawn(spec: RunSpec): ChildProcess {
    if (spec.uid === null) throw new Error(`app '${spec.app}' has no user yet: the sandbox needs one`);
    const cgroups = this.cgroups.create(spec.app, spec.kind, spec.limits, spec.background === true);
    const rlimits = [`--nofile=${spec.limits.nofile}`];
    // Without a pids cgroup, RLIMIT_NPROC (per uid, and each app has its own) bounds forks.
    if (!this.cgroups.hasPids) rlimits.push(`--nproc=${spec.limits.pids}`);
    // Node alone reserves ~0.75 GB of address space at start, so the limit needs that headroom.
    if (!this.cgroups.hasMemory) rlimits.push(`--as=${Math.max(spec.limits.memoryMb * 4, spec.limits.memoryMb + 1024) * 1024 * 1024}`);
    const argv = [
      '/bin/sh', '-c', JOIN_CGROUPS, 'join-cgroups', ...cgroups.procs, '--',
      'setpriv', '--pdeathsig', 'KILL', '--',
      'prlimit', ...rlimits, '--',
      'bwrap', ...bubblewrapArgs({
        releaseDir: spec.releaseDir, writable: spec.writable ?? [], uid: spec.uid, nodeDir: spec.runtime?.nodeDir,
        identityFds: { passwd: IDENTITY_FDS[0], group: IDENTITY_FDS[1] },
        seccompFd: SECCOMP ? SECCOMP_FD : undefined,
      }),
      '--', 'setpriv', ...dropPrivilegesArgs(spec.uid), '--', ...spec.command,
    ];
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: '/',
        env: appEnvironment(spec, '/app'),
        // fds 3 and 4 carry the sandbox's passwd and group, 5 its seccomp filter; bwrap reads and closes them.
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', SECCOMP ? 'pipe' : 'ignore'],
        detached: true,
      });
    } catch (err) {
      cgroups.remove();
      throw err;
    }
    const identity = sandboxIdentity(spec.uid);
    const feeds: Array<[number, string | Buffer | null]> = [[IDENTITY_FDS[0], identity.passwd], [IDENTITY_FDS[1], identity.group], [SECCOMP_FD, SECCOMP]];
    for (const [fd, data] of feeds) {
      const stream = child.stdio[fd] as Writable | null | undefined;
      if (!stream || data === null) continue;
      stream.on('error', () => { /* bwrap failed before reading it: its exit says why */ });
      stream.end(data);
    }
    const pid = child.pid;
    if (pid !== undefined) this.live.set(pid, cgroups);
    const gone = () => {
      if (pid !== undefined) this.live.delete(pid);
      cgroups.remove();
    };
    child.once('exit', gone);
    child.once('error', gone);
    return child;
  }

  /**
   * bubblewrap neither forwards signals nor keeps the app in our process group
   * (it starts a new session), so a graceful signal goes to the app's processes
   * themselves; when they exit, bwrap exits after them. SIGKILL takes all.
   */
  signal(pid: number, signal: NodeJS.Signals): void {
    // Once bwrap has exited its pid namespace is gone with everything in it, and the
    // number may already be another process's: never signal a pid we no longer own.
    if (!this.live.has(pid)) return;
    const below = descendants(pid);
    if (signal === 'SIGKILL') {
      signalQuietly(pid, signal);
      for (const p of below) signalQuietly(p.pid, signal);
      return;
    }
    for (const p of below) if (p.comm !== 'bwrap') signalQuietly(p.pid, signal);
  }

  foreground(pid: number): void {
    this.live.get(pid)?.foreground();
  }

  background(pid: number | undefined): void {
    if (pid !== undefined && !this.cgroups.background(pid)) niceDown(pid);
  }

  /** Hands a folder (a new release, the app's cache) to the app's user, private to it. */
  async claim(dir: string, uid: number | null): Promise<void> {
    if (uid === null) return;
    // chown -R walks without following links (the tree may hold the app's symlinks);
    // the top folder's path is ours, so one chmod call is safe.
    await run('chown', ['-R', '--no-dereference', `${uid}:${uid}`, dir]);
    await fs.promises.chmod(dir, 0o700);
  }

  forget(app: string): void {
    this.cgroups.forget(app);
  }

  close(): void {
    this.cgroups.close();
  }
}
