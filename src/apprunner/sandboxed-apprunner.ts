import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { appEnvironment, type Apprunner } from './apprunner.js';
import { bubblewrapArgs, dropPrivilegesArgs, sandboxIdentity } from './bubblewrap-args.js';
import { CgroupLimits, type ProcessCgroups } from './cgroup-limits.js';
import { dataScope } from './data-scope.js';
import { deathGuardedArgv, MONITOR_FDS } from './death-signal.js';
import { niceDown } from './deploy-priority.js';
import { encodeEnvironment, feedChild, loadEnvironmentArgv } from './env-handoff.js';
import { sharedNetwork, type NetworkPolicy } from './network-policy.js';
import { allowAllSeccompFilter, sandboxSeccompFilter } from './sandbox-seccomp.js';
import { descendants, signalQuietly } from './process-tree.js';
import { HELPER_ENV, systemProgram } from './system-programs.js';
import type { Isolation, LeftoverSweep, RunSpec } from './types.js';

const run = promisify(execFile);
const IDENTITY_FDS = [3, 4] as const;
const SECCOMP_FD = 5;
const ENV_FD = 6;
// Always a filter: pid 1 applying it shows the start chain that pid 1 is armed (see death-signal.ts).
const SECCOMP = sandboxSeccompFilter() ?? allowAllSeccompFilter();

/** Absolute paths, never looked up on an app's PATH (see system-programs.ts). */
interface Programs {
  setpriv: string;
  prlimit: string;
  bwrap: string;
  perl: string;
}

/**
 * Runs every app process and build step as the app's own user inside
 * bubblewrap, in the app's cgroups, with its file and process limits.
 */
export class SandboxedApprunner implements Apprunner {
  readonly isolation: Isolation = 'sandbox';
  readonly cgroups: CgroupLimits;
  /** bwrap pids of processes still running, with their groups: signals go only to these. */
  private readonly live = new Map<number, ProcessCgroups>();
  private readonly programs: Programs = {
    setpriv: systemProgram('setpriv'), prlimit: systemProgram('prlimit'), bwrap: systemProgram('bwrap'), perl: systemProgram('perl'),
  };

  constructor(dataDir: string, private readonly network: NetworkPolicy = sharedNetwork('no network policy was given')) {
    this.cgroups = new CgroupLimits(dataScope(dataDir));
  }

  spawn(spec: RunSpec): ChildProcess {
    if (spec.uid === null) throw new Error(`app '${spec.app}' has no user yet: the sandbox needs one`);
    // Every process of the chain before the final step runs as root, so each is named by
    // its full path and runs with HELPER_ENV alone; the app's environment travels on
    // ENV_FD to the last step, which runs as the app's user (see env-handoff.ts).
    const environment = encodeEnvironment(appEnvironment(spec, '/app'));
    const cgroups = this.network.confine(spec, this.cgroups.create(spec.app, spec.kind, spec.limits, spec.background === true));
    const rlimits = [`--nofile=${spec.limits.nofile}`];
    // Without a pids cgroup, RLIMIT_NPROC (per uid, and each app has its own) bounds forks.
    if (!this.cgroups.hasPids) rlimits.push(`--nproc=${spec.limits.pids}`);
    // Node alone reserves ~0.75 GB of address space at start, so the limit needs that headroom.
    if (!this.cgroups.hasMemory) rlimits.push(`--as=${Math.max(spec.limits.memoryMb * 4, spec.limits.memoryMb + 1024) * 1024 * 1024}`);
    const { setpriv, prlimit, bwrap, perl } = this.programs;
    const argv = deathGuardedArgv(this.programs, cgroups.procs, [
      prlimit, ...rlimits, '--',
      bwrap, ...bubblewrapArgs({
        releaseDir: spec.releaseDir, writable: spec.writable ?? [], readOnly: spec.readOnly, uid: spec.uid, nodeDir: spec.runtime?.nodeDir,
        identityFds: { passwd: IDENTITY_FDS[0], group: IDENTITY_FDS[1] },
        seccompFd: SECCOMP_FD, statusFd: MONITOR_FDS.write,
      }),
      '--', setpriv, ...dropPrivilegesArgs(spec.uid), '--', ...loadEnvironmentArgv(perl, ENV_FD, MONITOR_FDS), ...spec.command,
    ], true);
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: '/',
        env: HELPER_ENV,
        // fds 3 and 4 carry the sandbox's passwd and group, 5 its seccomp filter (bwrap reads
        // and closes them), 6 the app's environment, read by the last step inside.
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      cgroups.remove();
      throw err;
    }
    const identity = sandboxIdentity(spec.uid);
    feedChild(child, [
      [IDENTITY_FDS[0], identity.passwd], [IDENTITY_FDS[1], identity.group], [SECCOMP_FD, SECCOMP], [ENV_FD, environment],
    ]);
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

  /** Every process in this data folder's cgroups is one this server's runs started (see CgroupLimits.sweepScope). */
  sweepLeftovers(keep: (pid: number) => boolean): Promise<LeftoverSweep> {
    return this.cgroups.sweepScope(keep);
  }
}
