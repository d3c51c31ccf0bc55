import fs from 'node:fs';
import path from 'node:path';
import type { PlatformState } from './types.js';

function emptyState(): PlatformState {
  return { version: 1, apps: {}, keys: [], nextUid: 20000 };
}

/**
 * The platform's state in one JSON file. Every change is written to a temp file,
 * fsynced and renamed over the old one, so a kill -9 at any moment leaves either
 * the old or the new document, never a torn one.
 */
export class StateStore {
  private state: PlatformState;

  constructor(private readonly file: string) {
    this.state = StateStore.read(file);
    this.removeStaleTemps();
  }

  /** A killed server leaves its temp file (a whole state, token hashes included): remove it. */
  private removeStaleTemps(): void {
    const dir = path.dirname(this.file);
    const prefix = `${path.basename(this.file)}.`;
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith(prefix) && name.endsWith('.tmp') && name !== path.basename(this.tempFile())) {
        fs.rmSync(path.join(dir, name), { force: true });
      }
    }
  }

  private tempFile(): string {
    return `${this.file}.${process.pid}.tmp`;
  }

  static read(file: string): PlatformState {
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as PlatformState;
      return { ...emptyState(), ...parsed };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new Error(`cannot read state file ${file}: ${(err as Error).message}`);
    }
  }

  /** A read-only view; mutate only through update(). */
  get(): Readonly<PlatformState> {
    return this.state;
  }

  /** Applies fn to a copy and persists it; if fn throws, nothing changes. */
  update<T>(fn: (draft: PlatformState) => T): T {
    const draft = structuredClone(this.state);
    const result = fn(draft);
    this.write(draft);
    this.state = draft;
    return result;
  }

  private write(next: PlatformState): void {
    writeFileAtomic(this.file, this.tempFile(), JSON.stringify(next, null, 1));
  }
}

/**
 * Writes text to a temp file, fsyncs it and renames it over file, then fsyncs the
 * folder: a kill -9 at any moment leaves the old or the new content, never a torn one.
 */
export function writeFileAtomic(file: string, tmp: string, text: string): void {
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, text);
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
