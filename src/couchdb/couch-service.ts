import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { CouchClient, CouchError } from './couch-client.js';
import { CouchStateStore, type AppDatabase } from './couch-state.js';
import { describeEndpoint, type CouchEndpoint } from './couch-url.js';
import { EmbeddedServer } from './embedded-server.js';
import { Failover } from './failover.js';
import { Gateway, hashSecret } from './gateway.js';
import { DEFAULT_HEALTH, ServerHealth, type HealthOptions } from './health-monitor.js';
import type { Progress } from './replication-progress.js';
import { ReplicationJobs } from './replication-jobs.js';
import { UserError } from '../errors.js';

export const CONFIG_VAR = 'COUCHDB_URL';

/** What the data layer needs of the rest of the platform: narrow on purpose. */
export interface CouchServiceOptions {
  /** DATA/couchdb. */
  dir: string;
  /** The primary (--couchdb URL), or null for the embedded server. */
  primary: CouchEndpoint | null;
  /** The remote (--couchdb-replica URL), or null. */
  replica: CouchEndpoint | null;
  /** The gateway's port; 0: the one it had before, or a free one the first time. */
  gatewayPort: number;
  /** Where PouchDB Server is installed (default DATA/couchdb/server, installed on first use). */
  pouchdbServerDir: string | null;
  /** The app as the platform knows it, or null when there is no such app. */
  app(name: string): { createdAt: string; config: Readonly<Record<string, string>> } | null;
  /** Sets and unsets config vars the way config:set does (a zero-downtime restart); resolves to the new release or null. */
  setConfig(app: string, set: Record<string, string>, unset: string[], sinks: ((line: string) => void)[]): Promise<number | null>;
  /** A platform event in the app's log. */
  event(app: string, text: string): void;
  /** The server's log. */
  log(line: string): void;
  intervalMs?: number;
  health?: HealthOptions;
}

export interface DatabaseInfo {
  database: string;
  primary: { server: string; up: boolean };
  replica: { server: string; up: boolean } | null;
  /** The server the app's traffic goes to now. */
  using: 'primary' | 'replica';
  failover: 'none' | 'on the replica' | 'bringing back the replica\'s changes';
  replication: {
    direction: string;
    state: string;
    pending: number | null;
    pendingAtLeast: boolean;
    lastReplicatedAt: string | null;
  } | null;
  /** The last error of the replication work for this app, if its last round failed. */
  error: string | null;
}

interface Core {
  primary: ServerHealth;
  replica: ServerHealth | null;
  jobs: ReplicationJobs | null;
  failover: Failover;
}

/**
 * The data layer as a platform service: a CouchDB database per app, its
 * credentials, the gateway the app reaches it through, replication to the
 * replica and failover. The embedded server (when no --couchdb URL is given)
 * starts on first use and with the server once any app has a database.
 */
export class CouchService {
  private readonly store: CouchStateStore;
  private readonly gateway: Gateway;
  private embedded: EmbeddedServer | null = null;
  private core: Core | null = null;
  private starting: Promise<Core> | null = null;
  private port = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly o: CouchServiceOptions) {
    this.store = new CouchStateStore(path.join(o.dir, 'state.json'));
    this.gateway = new Gateway({
      lookup: (user) => {
        const rec = this.store.app(user);
        return rec && this.o.app(user)?.createdAt === rec.appCreatedAt ? { app: user, rec } : null;
      },
      backend: (app) => {
        const core = this.core;
        if (!core) return null;
        const side = core.failover.sideOf(app);
        return side === 'replica' && core.replica ? { side, client: core.replica.client } : { side: 'primary', client: core.primary.client };
      },
      embedded: () => this.o.primary === null,
      wrote: (app) => this.core?.failover.touch(app),
    });
  }

  /** Binds the gateway; brings up the backend when some app has a database. */
  async start(): Promise<void> {
    const remembered = this.store.get().gatewayPort;
    const want = this.o.gatewayPort || remembered || 0;
    try {
      this.port = await this.gateway.listen(want);
    } catch (err) {
      if (this.o.gatewayPort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw new Error(`the CouchDB gateway cannot listen on 127.0.0.1:${want}: ${(err as Error).message}`);
      this.port = await this.gateway.listen(0);
      this.o.log(`WARNING: the CouchDB gateway's port ${want} is taken: it listens on ${this.port} now; apps get the new COUCHDB_URL with a restart`);
    }
    if (this.port !== remembered) this.store.update((s) => void (s.gatewayPort = this.port));
    const apps = Object.keys(this.store.get().apps);
    if (apps.length) {
      await this.backend().catch((err: Error) => this.o.log(`the CouchDB is not ready: ${err.message}`));
      if (remembered && this.port !== remembered) for (const app of apps) void this.repoint(app);
    }
  }

  /** The apps that have a database (each may reach the gateway). */
  databaseApps(): string[] {
    return Object.keys(this.store.get().apps);
  }

  /** The gateway's port: the one loopback port of the data layer an app may connect to. */
  get gatewayPort(): number {
    return this.port;
  }

  /** Platform-service ports every app may reach on loopback (for the network policy). */
  servicePorts(): number[] {
    return this.port ? [this.port] : [];
  }

  /** The embedded server's port, which no app may reach (it has no credentials of its own), or null. */
  backendPort(): number | null {
    return this.o.primary === null ? this.store.get().embeddedPort : null;
  }

  /** The embedded server's pid while it runs (tests kill it). */
  embeddedPid(): number | null {
    return this.embedded?.pid ?? null;
  }

  async create(app: string, sinks: ((line: string) => void)[]): Promise<{ created: boolean; release: number | null; replicaNote: string | null }> {
    const known = this.o.app(app);
    if (!known) throw new UserError(`app '${app}' does not exist`);
    const existing = this.store.app(app);
    if (existing && existing.appCreatedAt !== known.createdAt) {
      throw new UserError(`the database '${app}' of an earlier app of that name is still there: keep it, or remove it first with 'platformx couchdb:destroy ${app} --confirm ${app}'`);
    }
    if (existing && known.config[CONFIG_VAR] && this.secretMatches(existing, known.config[CONFIG_VAR])) {
      throw new UserError(`app '${app}' already has a database: see 'platformx couchdb:info ${app}'`);
    }
    if (!this.core && !this.o.primary) sinks.forEach((out) => out('-----> Starting the embedded CouchDB (its first start installs pouchdb-server from npm: a minute or more)'));
    const core = await this.backend();
    const created = await this.reachable(core.primary.client.ensureDatabase(app), 'the primary');
    let replicaNote: string | null = null;
    if (core.replica && core.jobs) {
      try {
        await core.replica.client.ensureDatabase(app);
      } catch (err) {
        if (!(err instanceof CouchError) || err.code !== 'UNREACHABLE') throw err;
        replicaNote = 'the replica does not answer now: replication makes the database there when it does';
      }
      await core.jobs.ensure(app, 'push');
    }
    const secret = randomBytes(24).toString('base64url');
    this.store.update((s) => {
      const prev = s.apps[app];
      s.apps[app] = {
        db: app, user: app, secretHash: hashSecret(secret), appCreatedAt: known.createdAt, createdAt: prev?.createdAt ?? new Date().toISOString(),
        side: prev?.side ?? 'primary', pull: prev?.pull ?? null, pushSince: prev?.pushSince ?? 0,
      };
    });
    // The credentials work from here on: the new release may use them during its health check.
    const release = await this.o.setConfig(app, { [CONFIG_VAR]: this.url(app, secret) }, [], sinks);
    this.o.event(app, `database '${app}' ${created ? 'created' : 'attached (it was there: its documents are kept)'}${core.replica ? ', replicated to the replica' : ''}; COUCHDB_URL set`);
    return { created, release, replicaNote };
  }

  async info(app: string): Promise<DatabaseInfo> {
    const rec = this.record(app);
    const core = await this.backend();
    await core.failover.refresh(app);
    const { push } = core.failover.progress(app);
    let state = 'unknown (the primary does not answer)';
    if (core.jobs && core.primary.up) state = await core.jobs.state(app, 'push').catch((err: Error) => `unknown (${err.message})`);
    return {
      database: rec.db,
      primary: { server: this.o.primary ? describeEndpoint(this.o.primary) : `embedded (127.0.0.1:${this.store.get().embeddedPort})`, up: core.primary.up },
      replica: core.replica ? { server: describeEndpoint(core.replica.client.endpoint), up: core.replica.up } : null,
      using: this.store.app(app)!.side,
      failover: !rec.pull ? 'none' : this.store.app(app)!.side === 'replica' ? 'on the replica' : 'bringing back the replica\'s changes',
      replication: core.replica ? {
        direction: 'primary → replica', state, pending: push?.checkedAt ? push.pending : null, pendingAtLeast: push?.atLeast ?? false,
        lastReplicatedAt: push?.lastReplicatedAt ?? null,
      } : null,
      error: core.failover.errors.get(app) ?? null,
    };
  }

  async destroy(app: string, replicaToo: boolean, sinks: ((line: string) => void)[]): Promise<void> {
    const rec = this.record(app, true);
    const known = this.o.app(app);
    const core = await this.backend();
    if (!core.primary.up) throw new UserError('the primary CouchDB does not answer: nothing was removed; try again when it does');
    if (replicaToo && core.replica && !core.replica.up) throw new UserError('the replica does not answer: nothing was removed; try again when it does, or without --replica-too');
    // The app stops using the database before it goes.
    if (known?.createdAt === rec.appCreatedAt && known.config[CONFIG_VAR] !== undefined) await this.o.setConfig(app, {}, [CONFIG_VAR], sinks);
    if (core.jobs) {
      await core.jobs.remove(rec.db, 'push');
      await core.jobs.remove(rec.db, 'pull');
    }
    await core.primary.client.deleteDatabase(rec.db);
    if (replicaToo && core.replica) await core.replica.client.deleteDatabase(rec.db);
    this.store.update((s) => void delete s.apps[app]);
    core.failover.forget(app);
    if (known) this.o.event(app, `database '${rec.db}' destroyed${core.replica ? (replicaToo ? ', and its replica copy' : '; its replica copy stays') : ''}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await this.gateway.close();
    await this.embedded?.stop();
    this.core?.primary.client.close();
    this.core?.replica?.client.close();
  }

  private record(app: string, anyOwner = false): Readonly<AppDatabase> {
    const rec = this.store.app(app);
    if (!rec || (!anyOwner && rec.appCreatedAt !== this.o.app(app)?.createdAt)) {
      throw new UserError(`app '${app}' has no database: make one with 'platformx couchdb:create ${app}'`);
    }
    return rec;
  }

  private secretMatches(rec: Readonly<AppDatabase>, url: string): boolean {
    try {
      return hashSecret(decodeURIComponent(new URL(url).password)) === rec.secretHash;
    } catch {
      return false;
    }
  }

  private url(app: string, secret: string): string {
    return `http://${app}:${secret}@127.0.0.1:${this.port}/${app}`;
  }

  /** The gateway moved: the app gets its URL with the new port (same secret: it is in the config). */
  private async repoint(app: string): Promise<void> {
    const current = this.o.app(app)?.config[CONFIG_VAR];
    if (!current) return;
    try {
      const u = new URL(current);
      u.port = String(this.port);
      await this.o.setConfig(app, { [CONFIG_VAR]: u.href }, [], []);
    } catch (err) {
      this.o.log(`could not give ${app} the gateway's new port: ${(err as Error).message}`);
    }
  }

  private async reachable<T>(p: Promise<T>, which: string): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof CouchError && err.code === 'UNREACHABLE') throw new UserError(`${which} CouchDB does not answer: nothing was changed; try again when it does`);
      throw err;
    }
  }

  /** The primary (starting the embedded one on first use), its replica and the loops that watch them. */
  private backend(): Promise<Core> {
    this.starting ??= this.bringUp().catch((err) => {
      this.starting = null;
      throw err;
    });
    return this.starting;
  }

  private async bringUp(): Promise<Core> {
    let primaryEndpoint = this.o.primary;
    if (!primaryEndpoint) {
      this.embedded = new EmbeddedServer({
        dir: this.o.dir,
        installDir: this.o.pouchdbServerDir ?? path.join(this.o.dir, 'server'),
        port: this.store.get().embeddedPort,
        onPort: (port) => this.store.update((s) => void (s.embeddedPort = port)),
        log: this.o.log,
      });
      primaryEndpoint = await this.embedded.start();
      this.o.log(`the embedded CouchDB answers on 127.0.0.1:${this.store.get().embeddedPort} (data in ${this.embedded.dataDir})`);
    }
    const health = this.o.health ?? DEFAULT_HEALTH;
    const primary = new ServerHealth(new CouchClient(primaryEndpoint), health);
    const replica = this.o.replica ? new ServerHealth(new CouchClient(this.o.replica), health) : null;
    const jobs = replica ? new ReplicationJobs(primary.client, replica.client.endpoint) : null;
    const failover = new Failover({
      store: this.store, primary, replica, jobs,
      event: (app, text) => this.o.event(app, text),
      inflight: (app, side) => this.gateway.inflight(app, side),
    });
    const core: Core = { primary, replica, jobs, failover };
    await Promise.all([primary.probe(), replica?.probe()]);
    this.core = core;
    const interval = this.o.intervalMs ?? 1000;
    this.every(interval, async () => {
      const [p, r] = await Promise.all([primary.probe(), replica?.probe()]);
      if (p) this.o.log(`the primary CouchDB ${primary.up ? 'answers again' : 'does not answer'}`);
      if (r) this.o.log(`the CouchDB replica ${replica!.up ? 'answers again' : 'does not answer'}`);
      await failover.failOver();
    });
    this.every(interval, () => failover.tick());
    return core;
  }

  /** Runs fn every ms, one run at a time, until stop(). */
  private every(ms: number, fn: () => Promise<void>): void {
    const loop = async () => {
      const started = Date.now();
      try {
        await fn();
      } catch (err) {
        this.o.log(`couchdb: ${(err as Error).message}`);
      }
      if (this.stopped) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        void loop();
      }, Math.max(0, ms - (Date.now() - started)));
      t.unref();
      this.timers.add(t);
    };
    void loop();
  }
}
