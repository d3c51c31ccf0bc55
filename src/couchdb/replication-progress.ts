import type { CouchClient } from './couch-client.js';

/** Changes looked at per call; more than this waiting reads as "at least". */
const PAGE = 500;
/** Pages read per check while everything read so far has arrived. */
const MAX_PAGES = 20;

export interface Progress {
  /** Documents changed on the source that the target does not have yet (a lower bound when `atLeast`). */
  pending: number;
  atLeast: boolean;
  /** When a check last saw changes arrive on the target (ISO), or null. */
  lastReplicatedAt: string | null;
  /** When the last check finished (ISO), or null before the first. */
  checkedAt: string | null;
}

/**
 * How far replication from one database to its copy has come, measured the
 * way replication itself decides what to send, so it holds for CouchDB,
 * Cloudant and PouchDB Server alike: the source's changes after a cursor,
 * asked of the target with `_revs_diff`. The cursor moves up to the first
 * change the target lacks, so each check reads only what is new since.
 */
export class ReplicationProgress {
  private cursor: string | number;
  private state: Progress = { pending: 0, atLeast: false, lastReplicatedAt: null, checkedAt: null };

  constructor(private readonly source: CouchClient, private readonly target: CouchClient, private readonly db: string, since: string | number = 0) {
    this.cursor = since;
  }

  get since(): string | number {
    return this.cursor;
  }

  get progress(): Progress {
    return { ...this.state };
  }

  /** One measurement; throws when either side does not answer (the last figures stay). */
  async check(): Promise<Progress> {
    let pending = 0;
    let advanced = false;
    let full = false;
    for (let pages = 0; pages < MAX_PAGES && pending === 0; pages++) {
      const page = await this.source.changes(this.db, this.cursor, PAGE);
      full = page.results.length === PAGE;
      if (!page.results.length) break;
      const revs: Record<string, string[]> = {};
      for (const c of page.results) revs[c.id] = [...(revs[c.id] ?? []), ...c.changes.map((x) => x.rev)];
      const missing = await this.target.revsDiff(this.db, revs);
      for (const c of page.results) {
        const lacks = missing[c.id]?.missing ?? [];
        if (c.changes.some((x) => lacks.includes(x.rev))) pending++;
        else if (pending === 0) {
          this.cursor = c.seq;
          advanced = true;
        }
      }
      if (!full) break;
    }
    const now = new Date().toISOString();
    this.state = {
      pending,
      atLeast: full,
      // The first check walks history the target already had: that is no news of replication.
      lastReplicatedAt: advanced && this.state.checkedAt ? now : this.state.lastReplicatedAt,
      checkedAt: now,
    };
    return this.progress;
  }
}
