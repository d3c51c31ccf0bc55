import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { appEnvironment, type Apprunner } from './apprunner.js';
import { bubblewrapArgs, dropPrivilegesArgs } from './bubblewrap-args.js';
import { CgroupLimits } from './cgroup-limits.js';
import { descendants, signalQuietly } from './process-tree.js';
import type { Isolation, RunSpec } from './types.js';

const run = promisify(execFile);

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

  constructor(dataDir: string) {
    this.cgroups = new CgroupLimits(createHash('sha256').update(dataDir).digest('hex').slice(0, 8));
  }

  spawn(spec: RunSpec): ChildProcess {
    if (spec.uid === null) throw new Error(`app '${spec.app}' has no user yet: the sandbox needs one`);
    const cgroupProcs = this.cgroups.apply(spec.app, spec.limits);
    const rlimits = [`--nofile=${spec.limits.nofile}`];
    // Without a pids cgroup, RLIMIT_NPROC (per uid, and each app has its own) bounds forks.
    if (!this.cgroups.hasPids) rlimits.push(`--nproc=${spec.limits.pids}`);
    if (!this.cgroups.hasMemory) rlimits.push(`--as=${spec.limits.memoryMb * 4 * 1024 * 1024}`);
    const argv = [
      '/bin/sh', '-c', JOIN_CGROUPS, 'join-cgroups', ...cgroupProcs, '--',
      'setpriv', '--pdeathsig', 'KILL', '--',
      'prlimit', ...rlimits, '--',
      'bwrap', ...bubblewrapArgs({ releaseDir: spec.releaseDir, writable: spec.writable ?? [], uid: spec.uid }),
      '--', 'setpriv', ...dropPrivilegesArgs(spec.uid), '--', ...spec.command,
    ];
    return spawn(argv[0]!, argv.slice(1), {
      cwd: '/',
      env: appEnvironment(spec, '/app'),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  }

  /**
   * bubblewrap neither forwards signals nor keeps the app in our process group
   * (it starts a new session), so a graceful signal goes to the app's processes
   * themselves; when they exit, bwrap exits after them. SIGKILL takes all.
   */
  signal(pid: number, signal: NodeJS.Signals): void {
    const below = descendants(pid);
    if (signal === 'SIGKILL') {
      signalQuietly(pid, signal);
      for (const p of below) signalQuietly(p.pid, signal);
      return;
    }
    for (const p of below) if (p.comm !== 'bwrap') signalQuietly(p.pid, signal);
  }

  /** Hands a folder (a new release, the app's cache) to the app's user, private to it. */
  async claim(dir: string, uid: number | null): Promise<void> {
    if (uid === null) return;
    await run('chown', ['-R', '--no-dereference', `${uid}:${uid}`, dir]);
    await run('chmod', ['0700', dir]);
  }

  forget(app: string): void {
    this.cgroups.remove(app);
  }
}
