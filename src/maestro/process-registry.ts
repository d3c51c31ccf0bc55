import fs from 'node:fs';
import { processIdentity } from '../apprunner/process-tree.js';

interface Entry {
  pgid: number;
  /** processIdentity(pgid).start when it was recorded. */
  start: string;
}

/**
 * Process groups of the app processes this server started, kept in a file. Apps
 * get SIGKILL when the server dies (PDEATHSIG), but a child an app forked may
 * survive that; on the next start the listed groups are killed, each only while
 * its leader is provably the very process recorded (same pid, same start, still
 * leading its group): pids wrap, and a bare number may by then be anyone's. A
 * sandboxed app's leftovers are found through its cgroups instead (Apprunner.sweepLeftovers).
 */
export class ProcessRegistry {
  private readonly groups = new Map<number, string>();

  constructor(private readonly file: string) {}

  add(pid: number): void {
    const id = processIdentity(pid);
    if (!id) return; // already gone: nothing to find again
    this.groups.set(pid, id.start);
    this.save();
  }

  remove(pid: number): void {
    if (this.groups.delete(pid)) this.save();
  }

  /** Kills every group of the previous server run whose leader is still the process recorded. */
  killLeftovers(): number {
    let previous: unknown;
    try {
      previous = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch {
      return 0;
    }
    let killed = 0;
    // Entries of an older format (bare numbers) prove nothing and are dropped.
    for (const e of Array.isArray(previous) ? previous : []) {
      const { pgid, start } = (e ?? {}) as Partial<Entry>;
      if (!Number.isInteger(pgid) || pgid! <= 1 || typeof start !== 'string') continue;
      const now = processIdentity(pgid!);
      if (now?.start !== start || now.pgid !== pgid) continue;
      try {
        process.kill(-pgid!, 'SIGKILL');
        killed++;
      } catch {
        /* group already gone */
      }
    }
    this.save();
    return killed;
  }

  private save(): void {
    const entries: Entry[] = [...this.groups].map(([pgid, start]) => ({ pgid, start }));
    fs.writeFileSync(`${this.file}.tmp`, JSON.stringify(entries), { mode: 0o600 });
    fs.renameSync(`${this.file}.tmp`, this.file);
  }
}
