import fs from 'node:fs';
import path from 'node:path';
import type { Limits } from '../state/types.js';
import { signalQuietly } from './process-tree.js';
import type { LeftoverSweep } from './types.js';

const ROOT = '/sys/fs/cgroup';

/** Where this process sits in a cgroup v1 controller, from /proc/self/cgroup ("4:memory:/a/b"). */
function ownCgroup(controller: string): string | null {
  try {
    for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, where] = line.split(':');
      if (controllers?.split(',').includes(controller)) return where ?? '/';
    }
  } catch {
    /* no /proc: no cgroups */
  }
  return null;
}

function controllerDir(controller: string): string | null {
  const where = ownCgroup(controller);
  if (where === null) return null;
  const dir = path.join(ROOT, controller, where);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return dir;
  } catch {
    return null;
  }
}

/** The groups of one running process; `remove` once it has exited. */
export interface ProcessCgroups {
  /** cgroup.procs files the process joins before it execs anything else. */
  readonly procs: string[];
  readonly dirs: string[];
  /** A process started in the background now serves: it gets a full CPU share. */
  foreground(): void;
  remove(): void;
}

/**
 * CPU weight of a background group against a serving process's 1024: when CPU is
 * short a deploy gets an eighth of what one serving process gets, so it slows
 * down instead of slowing requests, yet still lands when the machine is pegged
 * (SCHED_IDLE, cpu.idle=1, measured the same on latency, but a push beside three
 * spinning app processes took 141 s instead of 6.6 s).
 */
export const BACKGROUND_CPU_SHARES = 128;
export const SERVING_CPU_SHARES = 1024;

function setCpuPriority(dir: string, background: boolean): void {
  fs.writeFileSync(path.join(dir, 'cpu.shares'), String(background ? BACKGROUND_CPU_SHARES : SERVING_CPU_SHARES));
}

/**
 * Cgroups (v1) for memory, process count and CPU priority, one group per app process or build
 * step, below the server's own cgroup in each controller: a memory hog meets the
 * kernel's OOM killer in its own group, a fork bomb meets pids.max, and nothing
 * else on the machine notices. Per process, not per app, like a dyno: a build or
 * the new release during a switch-over never shares (and so never squeezes) the
 * budget of the release that serves, and a lowered limit never has to shrink a
 * running group. Each group is removed when its process exits. The cpu group of
 * a build step, or of a new release until it serves, is in the background (see
 * setCpuPriority), so deploys take spare CPU rather than the serving apps'.
 */
export class CgroupLimits {
  private readonly memory = controllerDir('memory');
  private readonly pids = controllerDir('pids');
  private readonly cpu = controllerDir('cpu');
  /** Where git, its hooks and checkouts run (see background()). */
  private readonly deployCpu: string | null = null;
  private seq = 0;

  /** `scope` (from the data folder) keeps two servers' groups apart. */
  constructor(private readonly scope: string) {
    // Groups left by a previous run of this server (killed before it could clean up).
    this.sweep(`platformx-${scope}`);
    if (this.cpu) {
      const dir = path.join(this.cpu, `platformx-${scope}-deploy`);
      try {
        fs.mkdirSync(dir, { recursive: true });
        setCpuPriority(dir, true);
        this.deployCpu = dir;
      } catch {
        /* no cpu groups after all: deploy work is niced instead */
      }
    }
  }

  /** What the machine offers, for the start-up line and apps:info. */
  describe(): string {
    const parts = [
      this.memory ? 'memory cgroup' : 'no memory cgroup (address-space limit instead)',
      this.pids ? 'pids cgroup' : 'no pids cgroup (RLIMIT_NPROC instead)',
      this.deployCpu ? `deploys at cpu weight ${BACKGROUND_CPU_SHARES}/${SERVING_CPU_SHARES}` : 'deploys niced (no cpu cgroup)',
    ];
    return parts.join(', ');
  }

  get hasMemory(): boolean {
    return this.memory !== null;
  }

  get hasPids(): boolean {
    return this.pids !== null;
  }

  /**
   * Moves a process the server started for a deploy (git receive-pack, checkout)
   * into the background cpu group; false when there is none (the caller nices it).
   */
  background(pid: number): boolean {
    if (!this.deployCpu) return false;
    try {
      fs.writeFileSync(path.join(this.deployCpu, 'cgroup.procs'), String(pid));
      return true;
    } catch {
      return false; // it already exited, or the group is gone
    }
  }

  /** Makes fresh groups for one process of `app` with `limits`; `background` until it serves (or for good, for a build). */
  create(app: string, kind: string, limits: Limits, background: boolean): ProcessCgroups {
    // App names are DNS labels (no dots), so the dots keep one app's prefix from matching another's.
    const name = `platformx-${this.scope}.${app}.${kind}.${process.pid}-${++this.seq}`;
    const dirs: string[] = [];
    let cpuDir: string | null = null;
    const group: ProcessCgroups = {
      procs: [],
      dirs,
      foreground: () => {
        try {
          if (cpuDir) setCpuPriority(cpuDir, false);
        } catch {
          /* the process has exited and its group is gone */
        }
      },
      remove: () => removeDirs(dirs),
    };
    try {
      if (this.memory) {
        const dir = path.join(this.memory, name);
        fs.mkdirSync(dir);
        dirs.push(dir);
        const bytes = String(limits.memoryMb * 1024 * 1024);
        fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), bytes);
        // With swap accounting a hog cannot page out instead of being stopped.
        try {
          fs.writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), bytes);
        } catch {
          /* no swap accounting on this kernel */
        }
        group.procs.push(path.join(dir, 'cgroup.procs'));
      }
      if (this.pids) {
        const dir = path.join(this.pids, name);
        fs.mkdirSync(dir);
        dirs.push(dir);
        fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
        group.procs.push(path.join(dir, 'cgroup.procs'));
      }
      if (this.cpu) {
        // One cpu group per process, as bubblewrap's new session would be one autogroup.
        const dir = path.join(this.cpu, name);
        fs.mkdirSync(dir);
        dirs.push(dir);
        setCpuPriority(dir, background);
        cpuDir = dir;
        group.procs.push(path.join(dir, 'cgroup.procs'));
      }
    } catch (err) {
      group.remove();
      throw err;
    }
    return group;
  }

  /** The server stops: its deploy group goes once the last deploy helper has. */
  close(): void {
    // With the apps stopped, every group of this server empties: its deploy group, and any
    // process's group whose own removal gave up while the process was slow to die.
    removeDirs(this.groups(`platformx-${this.scope}`));
  }

  /**
   * Server start: SIGKILLs every process in any group of this scope (a previous run's app
   * processes, build steps and deploy helpers, whatever their session or process group)
   * unless keep(pid) claims it, then removes every group with no kept process. Only root
   * can move a process into these groups and only this server's start chain does, so
   * whatever is in one is provably this server's; a pid is re-checked to be in the
   * group right before it is signalled. Kills repeat until the groups are empty, so a
   * process forking meanwhile does not escape (timeoutMs at most).
   */
  async sweepScope(keep: (pid: number) => boolean, timeoutMs = 5000): Promise<LeftoverSweep> {
    const groups = this.groups(`platformx-${this.scope}`);
    const killed = new Set<number>();
    const kept = new Set<string>();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let waiting = false;
      for (const dir of groups) {
        for (const pid of groupProcs(dir)) {
          if (keep(pid)) {
            kept.add(dir);
            continue;
          }
          if (!inGroup(pid, dir)) continue;
          signalQuietly(pid, 'SIGKILL');
          killed.add(pid);
          waiting = true;
        }
      }
      if (!waiting || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    let removedGroups = 0;
    for (const dir of groups) {
      if (kept.has(dir) || dir === this.deployCpu) continue;
      if (await removeWhenEmpty(dir, deadline)) removedGroups++;
    }
    return { killed: killed.size, removedGroups, keptGroups: kept.size };
  }

  /** Removes whatever empty groups of `app` are left (app destroyed). */
  forget(app: string): void {
    this.sweep(`platformx-${this.scope}.${app}.`);
  }

  /** rmdir only succeeds on a group with no process left, so a live one is never touched. */
  private sweep(prefix: string): void {
    for (const dir of this.groups(prefix)) {
      try {
        fs.rmdirSync(dir);
      } catch {
        /* still in use */
      }
    }
  }

  /** This server's groups whose names start with prefix, in every controller. */
  private groups(prefix: string): string[] {
    const found: string[] = [];
    for (const base of [this.memory, this.pids, this.cpu]) {
      if (!base) continue;
      try {
        for (const n of fs.readdirSync(base)) if (n.startsWith(prefix)) found.push(path.join(base, n));
      } catch {
        /* the controller went away */
      }
    }
    return found;
  }
}

/** Pids in a group (cgroup.procs), none when it is gone. */
function groupProcs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** True while pid still sits in the group at dir (so the number was not reused by another process). */
function inGroup(pid: number, dir: string): boolean {
  const rel = path.relative(ROOT, dir);
  const controller = rel.split(path.sep)[0]!;
  const where = `/${rel.split(path.sep).slice(1).join('/')}`;
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').some((line) => {
      const [, controllers, at] = line.split(':');
      return controllers?.split(',').includes(controller) === true && at === where;
    });
  } catch {
    return false; // exited
  }
}

/** rmdir once the group's killed processes are gone; false when it still holds one at the deadline. */
async function removeWhenEmpty(dir: string, deadline: number): Promise<boolean> {
  for (;;) {
    try {
      fs.rmdirSync(dir);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      if (Date.now() > deadline) return false;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * rmdir each group, retrying briefly: when bwrap's monitor is killed, the reaper and
 * the app inside die just after it. The timer keeps a stopping server alive for those
 * few milliseconds, so it leaves no group behind (2 s at most).
 */
function removeDirs(dirs: string[], attempt = 0): void {
  const left = dirs.filter((d) => {
    try {
      fs.rmdirSync(d);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  });
  if (left.length && attempt < 40) setTimeout(() => removeDirs(left, attempt + 1), 50);
}
