import fs from 'node:fs';
import path from 'node:path';
import type { Limits } from '../state/types.js';

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

/**
 * Per-app cgroups (v1) for memory and process count, below the server's own
 * cgroup in each controller: a memory hog meets the kernel's OOM killer in its
 * own group, a fork bomb meets pids.max, and nothing else on the machine notices.
 */
export class CgroupLimits {
  private readonly memory = controllerDir('memory');
  private readonly pids = controllerDir('pids');

  /** `scope` (from the data folder) keeps two servers' apps of the same name apart. */
  constructor(private readonly scope: string) {}

  private group(app: string): string {
    return `platformx-${this.scope}-${app}`;
  }

  /** What the machine offers, for the start-up line and apps:info. */
  describe(): string {
    const parts = [this.memory ? 'memory cgroup' : 'no memory cgroup (address-space limit instead)', this.pids ? 'pids cgroup' : 'no pids cgroup (RLIMIT_NPROC instead)'];
    return parts.join(', ');
  }

  get hasMemory(): boolean {
    return this.memory !== null;
  }

  get hasPids(): boolean {
    return this.pids !== null;
  }

  /** Creates (or updates) the app's groups and returns their cgroup.procs files to join. */
  apply(app: string, limits: Limits): string[] {
    const procs: string[] = [];
    if (this.memory) {
      const dir = path.join(this.memory, this.group(app));
      fs.mkdirSync(dir, { recursive: true });
      const bytes = String(limits.memoryMb * 1024 * 1024);
      // With swap accounting a hog cannot page out instead of being stopped. The
      // kernel wants memory ≤ memory+swap at every step: raise one, then the other.
      const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
      const trySwap = () => {
        try {
          fs.writeFileSync(memsw, bytes);
        } catch {
          /* lower than the current memory limit, or no swap accounting */
        }
      };
      trySwap();
      fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), bytes);
      trySwap();
      procs.push(path.join(dir, 'cgroup.procs'));
    }
    if (this.pids) {
      const dir = path.join(this.pids, this.group(app));
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'pids.max'), String(limits.pids));
      procs.push(path.join(dir, 'cgroup.procs'));
    }
    return procs;
  }

  /** Removes the app's groups once no process is left in them (app destroyed). */
  remove(app: string): void {
    for (const base of [this.memory, this.pids]) {
      if (!base) continue;
      try {
        fs.rmdirSync(path.join(base, this.group(app)));
      } catch {
        /* still in use or never made */
      }
    }
  }
}
