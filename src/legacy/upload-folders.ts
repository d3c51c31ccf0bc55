// The legacy upload folder of each app (DataPaths.upload): where rsync writes a
// bundle and where restart_app takes its snapshot from. An rsync into a folder
// and a snapshot of it never overlap, so a deploy never builds a half upload.
import fs from 'node:fs';
import { DeployLocks } from '../maestro/deploy-lock.js';
import type { DataPaths } from '../state/paths.js';

export class UploadFolders {
  private readonly locks = new DeployLocks();

  constructor(private readonly paths: DataPaths) {}

  dir(app: string): string {
    return this.paths.upload(app);
  }

  /** Creates the folder (mode 0700) if missing, owned by the app's user when it has one. */
  ensure(app: string, uid: number | null): string {
    const dir = this.dir(app);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (uid !== null && process.getuid?.() === 0) {
      const st = fs.statSync(dir);
      if (st.uid !== uid) fs.chownSync(dir, uid, uid);
    }
    return dir;
  }

  /** True when something was uploaded (the folder exists and is not empty). */
  hasUpload(app: string): boolean {
    try {
      return fs.readdirSync(this.dir(app)).length > 0;
    } catch {
      return false;
    }
  }

  /** Runs fn while no other upload or snapshot of the app's folder runs; onWait is told when it has to wait. */
  async exclusive<T>(app: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
    const release = await this.locks.acquire(app, onWait);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
