import type { CouchClient } from './couch-client.js';
import { databaseUrl, type CouchEndpoint } from './couch-url.js';

export type Direction = 'push' | 'pull';

/**
 * Continuous replication as persistent `_replicator` documents on the primary:
 * push (primary → replica) always, pull (replica → primary) while a failover is
 * being undone. Both live on the primary because a remote replica (Cloudant)
 * cannot reach a primary that listens on this machine's loopback. Unlike
 * `POST /_replicate`, a `_replicator` job survives its target going away (it
 * retries, resumes from its checkpoint, and restarts with the server), and
 * PouchDB Server does not crash when the target dies under it.
 */
export class ReplicationJobs {
  constructor(private readonly primary: CouchClient, private readonly replica: CouchEndpoint) {}

  static docId(db: string, direction: Direction): string {
    return `platformx-${db}-${direction}`;
  }

  /** Writes the job's document unless an identical one is there (a rewrite would restart the job). */
  async ensure(db: string, direction: Direction): Promise<void> {
    await this.primary.ensureDatabase('_replicator');
    const local = databaseUrl(this.primary.endpoint, db);
    const remote = databaseUrl(this.replica, db);
    const want = {
      source: direction === 'push' ? local : remote,
      target: direction === 'push' ? remote : local,
      continuous: true,
      // The replica may be down when the database is made: the job makes it there.
      create_target: direction === 'push',
    };
    const id = ReplicationJobs.docId(db, direction);
    const have = await this.primary.getDoc('_replicator', id);
    if (have && have.source === want.source && have.target === want.target && have.continuous === true) return;
    await this.primary.putDoc('_replicator', id, want);
  }

  async remove(db: string, direction: Direction): Promise<void> {
    await this.primary.deleteDoc('_replicator', ReplicationJobs.docId(db, direction));
  }

  /**
   * What the server says of the job: CouchDB 3's scheduler state (running,
   * pending, crashing …), else the document's `_replication_state` (PouchDB
   * Server, CouchDB 1), or 'missing'.
   */
  async state(db: string, direction: Direction): Promise<string> {
    const id = ReplicationJobs.docId(db, direction);
    const scheduled = await this.primary.request('GET', `/_scheduler/docs/_replicator/${encodeURIComponent(id)}`);
    if (scheduled.status === 200 && typeof scheduled.body?.state === 'string') return scheduled.body.state;
    const doc = await this.primary.getDoc('_replicator', id);
    if (!doc) return 'missing';
    return typeof doc._replication_state === 'string' ? doc._replication_state : 'scheduled';
  }
}
