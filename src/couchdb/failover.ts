import type { CouchStateStore, Side } from './couch-state.js';
import type { ServerHealth } from './health-monitor.js';
import { ReplicationProgress, type Progress } from './replication-progress.js';
import type { ReplicationJobs } from './replication-jobs.js';

export interface FailoverDeps {
  store: CouchStateStore;
  primary: ServerHealth;
  /** Null without --couchdb-replica: nothing to fail over to. */
  replica: ServerHealth | null;
  jobs: ReplicationJobs | null;
  /** A platform event in the app's log. */
  event(app: string, text: string): void;
  /** Requests of the app's the gateway has open on a side. */
  inflight(app: string, side: Side): number;
}

/** How often an idle database's replication is measured anyway (one with writes: every tick). */
const IDLE_CHECK_MS = 30_000;
/** How often a moving cursor is written to the state file. */
const SAVE_CURSOR_MS = 10_000;

/**
 * Which server each app's database traffic goes to, and the replication that
 * keeps both sides whole. Normally: the primary, and primary → replica. When
 * the primary stops answering (and the replica answers): the replica at once,
 * and replica → primary as soon as the primary answers again. Once every change
 * written on the replica since the switch is on the primary: back to the
 * primary; once the last request on the replica has ended and nothing more is
 * waiting: replica → primary stops. Each switch is an event in the app's log.
 * The state is in the state file, so a server restart mid-way goes on from there.
 */
export class Failover {
  private readonly push = new Map<string, ReplicationProgress>();
  private readonly pull = new Map<string, ReplicationProgress>();
  /** Jobs written since the primary last came up (written again after each outage). */
  private readonly ready = new Set<string>();
  private readonly touched = new Set<string>();
  private readonly lastCheck = new Map<string, number>();
  private readonly lastSave = new Map<string, number>();
  private readonly busy = new Set<string>();
  readonly errors = new Map<string, string>();

  constructor(private readonly d: FailoverDeps) {}

  sideOf(app: string): Side {
    return this.d.store.app(app)?.side ?? 'primary';
  }

  /** The app wrote through the gateway: measure its replication on the next tick. */
  touch(app: string): void {
    this.touched.add(app);
  }

  progress(app: string): { push: Progress | null; pull: Progress | null } {
    return { push: this.push.get(app)?.progress ?? null, pull: this.pull.get(app)?.progress ?? null };
  }

  forget(app: string): void {
    for (const m of [this.push, this.pull, this.lastCheck, this.lastSave, this.errors]) m.delete(app);
    this.ready.delete(`${app}:push`);
    this.ready.delete(`${app}:pull`);
    this.touched.delete(app);
  }

  /**
   * While the primary is down: every app still on it moves to the replica, if
   * the replica answers. Called every health round, not only on a change, and
   * without waiting for an app's replication work, so no app is left behind.
   */
  async failOver(): Promise<void> {
    const { primary, replica } = this.d;
    if (primary.up) return;
    this.ready.clear();
    if (!replica?.up) return;
    await this.eachApp(false, async (app) => {
      const rec = this.d.store.app(app)!;
      if (rec.side !== 'primary') return;
      // Changes the replica has now came from the primary; those after it are the app's, to bring back.
      const since = rec.pull?.since ?? (await replica.client.databaseInfo(rec.db))?.update_seq ?? 0;
      this.d.store.update((s) => {
        s.apps[app]!.side = 'replica';
        s.apps[app]!.pull ??= { since };
      });
      this.pull.delete(app);
      this.d.event(app, `the primary CouchDB does not answer: database traffic goes to the replica (${replica.client.endpoint.origin}); replication replica → primary starts when the primary answers again`);
    });
  }

  /** One round of replication work for every app: jobs, measurements, the way back after a failover. */
  async tick(): Promise<void> {
    await this.eachApp(true, (app) => this.step(app));
  }

  private async step(app: string): Promise<void> {
    const { primary, replica, jobs, store } = this.d;
    if (!replica || !jobs || !primary.up) return;
    const rec = store.app(app)!;
    await this.once(`${app}:push`, async () => {
      await primary.client.ensureDatabase(rec.db);
      await jobs.ensure(rec.db, 'push');
    });
    if (!rec.pull) {
      if (replica.up) await this.measurePush(app);
      return;
    }
    await this.once(`${app}:pull`, async () => {
      await jobs.ensure(rec.db, 'pull');
      this.d.event(app, 'the primary CouchDB answers again: replication replica → primary runs to bring back what was written during the failover');
    });
    if (!replica.up) {
      if (rec.side === 'replica') this.switchBack(app, 'the replica does not answer either: database traffic goes back to the primary; what was written on the replica comes back when it answers');
      return;
    }
    const since = rec.pull.since;
    let progress = this.pull.get(app);
    if (!progress) this.pull.set(app, (progress = new ReplicationProgress(replica.client, primary.client, rec.db, since)));
    const p = await progress.check();
    if (p.pending > 0 || p.atLeast) return;
    if (store.app(app)!.side === 'replica') {
      this.switchBack(app, 'the primary CouchDB has every change written on the replica: database traffic is back on the primary');
      return;
    }
    // Requests that were already on the replica may still write there: wait for them, then measure again.
    if (this.d.inflight(app, 'replica') > 0) return;
    await jobs.remove(rec.db, 'pull');
    store.update((s) => void (s.apps[app]!.pull = null));
    this.pull.delete(app);
    this.ready.delete(`${app}:pull`);
    this.d.event(app, 'replication runs primary → replica only again: the failover is over');
  }

  private switchBack(app: string, why: string): void {
    if (!this.d.primary.up) return;
    this.d.store.update((s) => void (s.apps[app]!.side = 'primary'));
    this.d.event(app, why);
  }

  private async measurePush(app: string): Promise<void> {
    const now = Date.now();
    if (!this.touched.has(app) && now - (this.lastCheck.get(app) ?? 0) < IDLE_CHECK_MS) return;
    this.touched.delete(app);
    this.lastCheck.set(app, now);
    const rec = this.d.store.app(app)!;
    let progress = this.push.get(app);
    if (!progress) this.push.set(app, (progress = new ReplicationProgress(this.d.primary.client, this.d.replica!.client, rec.db, rec.pushSince)));
    const p = await progress.check();
    // Still waiting: look again next tick, not in 30 s.
    if (p.pending > 0 || p.atLeast) this.touched.add(app);
    if (progress.since !== rec.pushSince && now - (this.lastSave.get(app) ?? 0) >= SAVE_CURSOR_MS) {
      this.lastSave.set(app, now);
      this.d.store.update((s) => void (s.apps[app]!.pushSince = progress.since));
    }
  }

  /** Runs fn once per period of the primary being up (failOver clears them). */
  private async once(key: string, fn: () => Promise<void>): Promise<void> {
    if (this.ready.has(key)) return;
    await fn();
    this.ready.add(key);
  }

  /** One round for one app now (couchdb:info wants fresh figures); skipped if its round is at work. */
  async refresh(app: string): Promise<void> {
    this.touch(app);
    await this.guarded(app, true, () => this.step(app));
  }

  /** fn for each app with a database, all at once. */
  private async eachApp(exclusive: boolean, fn: (app: string) => Promise<void>): Promise<void> {
    await Promise.all(Object.keys(this.d.store.get().apps).map((app) => this.guarded(app, exclusive, () => fn(app))));
  }

  /** One app's failure is its own (kept for couchdb:info). `exclusive`: skip an app whose last round is still at work. */
  private async guarded(app: string, exclusive: boolean, fn: () => Promise<void>): Promise<void> {
    if (exclusive && this.busy.has(app)) return;
    if (exclusive) this.busy.add(app);
    try {
      if (this.d.store.app(app)) await fn();
      this.errors.delete(app);
    } catch (err) {
      this.errors.set(app, (err as Error).message);
    } finally {
      if (exclusive) this.busy.delete(app);
    }
  }
}
