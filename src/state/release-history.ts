import fs from 'node:fs';
import path from 'node:path';
import { removeStaleTemps, writeFileAtomic } from './atomic-file.js';
import type { ReleaseRecord } from './types.js';

interface HistoryDoc {
  nextVersion: number;
  /** Oldest first; at most `keep` of them. */
  records: ReleaseRecord[];
}

/**
 * One app's release records, in its own file beside its builds
 * (`apps/APP/releases.json`), so that the state document every change rewrites
 * does not grow with history. The newest `keep` records stay there; older ones
 * are appended to `releases.archive.jsonl` once and never rewritten.
 */
export class ReleaseHistory {
  private doc: HistoryDoc;

  constructor(private readonly dir: string, private readonly keep: number) {
    this.doc = { nextVersion: 1, records: [] };
    try {
      this.doc = JSON.parse(fs.readFileSync(this.file, 'utf8')) as HistoryDoc;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    removeStaleTemps(this.file);
  }

  private get file(): string {
    return path.join(this.dir, 'releases.json');
  }

  get nextVersion(): number {
    return this.doc.nextVersion;
  }

  list(): readonly ReleaseRecord[] {
    return this.doc.records;
  }

  /** Applies fn to a copy and persists it; if fn throws, nothing changes. */
  update<T>(fn: (doc: HistoryDoc) => T): T {
    const draft = structuredClone(this.doc);
    const result = fn(draft);
    const dropped = draft.records.length > this.keep ? draft.records.splice(0, draft.records.length - this.keep) : [];
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // Archived first: a crash in between leaves a record in both places, never in neither.
    if (dropped.length) fs.appendFileSync(path.join(this.dir, 'releases.archive.jsonl'), dropped.map((r) => JSON.stringify(r) + '\n').join(''), { mode: 0o600 });
    writeFileAtomic(this.file, JSON.stringify(draft));
    this.doc = draft;
    return result;
  }
}
