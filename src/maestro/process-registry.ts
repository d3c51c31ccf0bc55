import fs from 'node:fs';

/**
 * Process groups of the app processes this server started, kept in a file. Apps
 * get SIGKILL when the server dies (PDEATHSIG), but a child an app forked
 * survives that; on the next start the leftovers of the listed groups are killed,
 * so no old release keeps holding a port or memory.
 */
export class ProcessRegistry {
  private readonly groups = new Set<number>();

  constructor(private readonly file: string) {}

  add(pid: number): void {
    this.groups.add(pid);
    this.save();
  }

  remove(pid: number): void {
    if (this.groups.delete(pid)) this.save();
  }

  /** Kills every process still in a group the previous server run recorded. */
  killLeftovers(): number {
    let previous: number[] = [];
    try {
      previous = JSON.parse(fs.readFileSync(this.file, 'utf8')) as number[];
    } catch {
      return 0;
    }
    let killed = 0;
    for (const pgid of previous) {
      if (!Number.isInteger(pgid) || pgid <= 1) continue;
      try {
        process.kill(-pgid, 'SIGKILL');
        killed++;
      } catch {
        /* group already gone */
      }
    }
    this.save();
    return killed;
  }

  private save(): void {
    fs.writeFileSync(`${this.file}.tmp`, JSON.stringify([...this.groups]), { mode: 0o600 });
    fs.renameSync(`${this.file}.tmp`, this.file);
  }
}
