import fs from 'node:fs';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';
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
    removeStaleTemps(file);
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
    writeFileAtomic(this.file, JSON.stringify(next, null, 1));
  }
}
