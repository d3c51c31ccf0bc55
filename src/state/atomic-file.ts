import fs from 'node:fs';
import path from 'node:path';

/** The temp file a writer of `file` uses; one per process, so two never share it. */
export function tempFileOf(file: string): string {
  return `${file}.${process.pid}.tmp`;
}

/**
 * Replaces `file` with `data` so that a kill -9 at any moment leaves the old or
 * the new content, never a torn one: temp file, fsync, rename, fsync the folder.
 * The one way this project writes a file that must survive a crash whole.
 */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = tempFileOf(file);
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

/** A killed writer leaves its temp file behind (for state: token hashes and all): remove those of `file`. */
export function removeStaleTemps(file: string): void {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith('.tmp') && path.join(dir, name) !== tempFileOf(file)) {
      fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}
