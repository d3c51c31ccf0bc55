import { fork, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newTicketKeys } from '../certs/session-tickets.js';
import { SLOW_START_MIN_RATE } from '../proxy/route-table.js';
import type { AccessEntry, BackendShift, ProxySettings, RouteControl } from '../proxy/types.js';
import type { AcmeEntry, ProxyWorkerInfo, TlsMessage } from './protocol.js';
import type { StackListen, StackState } from './proxy-stack.js';
import { AppRates, RouteRecord } from './route-record.js';
import type { FromWorker, ToWorker, WorkerCall, WorkerStats } from './worker-protocol.js';
import { PROXY_WORKER_FLAGS } from './worker-flags.js';

/**
 * How connections reach the workers. cluster: the primary accepts and deals them round-robin.
 * shared: cluster gives every worker the primary's listening socket and each accepts from it
 * (cluster's SCHED_NONE; nginx's model without reuseport). reuseport: each worker has its own
 * SO_REUSEPORT listener.
 */
export type Balance = 'cluster' | 'shared' | 'reuseport';
export const BALANCES: readonly Balance[] = ['cluster', 'shared', 'reuseport'];

/** Route changes that resolve once every worker applied them. */
export interface AppliedRoutes extends RouteControl {
  setHosts(app: string, hosts: readonly string[]): Promise<void>;
  setBackends(app: string, ports: readonly number[]): Promise<void>;
  removeApp(app: string): Promise<void>;
}

export interface ProxyWorkersOptions {
  count: number;
  /** Where the proxy listens (reusePort is set from balance). */
  listen: StackListen;
  balance: Balance;
  onAccess: (e: AccessEntry) => void;
  log: (line: string) => void;
}

/** A route change not applied within this is a hung worker: it is killed and replaced (with the whole table). */
const APPLY_TIMEOUT_MS = 5000;
const STATS_TIMEOUT_MS = 1000;
/** A worker that dies this soon after starting is replaced after RESPAWN_DELAY_MS, not at once (no crash loop). */
export const QUICK_DEATH_MS = 2000;
const RESPAWN_DELAY_MS = 1000;
const STOP_GRACE_MS = 3000;

const WORKER_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-main.js');

/** The worker went away before it answered: whatever it served went with it, so the call has nothing left to do there. */
class WorkerGone extends Error {
  readonly code = 'WORKER_GONE';
}

/** One worker process and its calls in flight. */
class Worker {
  state: 'starting' | 'serving' = 'starting';
  /** The init is sent: route changes go to this worker from now on. */
  member = false;
  readonly startedAt = Date.now();
  readonly exited: Promise<void>;
  readonly ready: Promise<{ port: number; httpsPort: number | null }>;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer?: NodeJS.Timeout }>();

  constructor(readonly slot: number, readonly child: ChildProcess, onMessage: (w: Worker, m: FromWorker) => void) {
    let ready!: (ports: { port: number; httpsPort: number | null }) => void;
    let failed!: (e: Error) => void;
    this.ready = new Promise((res, rej) => ((ready = res), (failed = rej)));
    this.ready.catch(() => {});
    // A send to a worker that just died fails asynchronously; its exit is what counts.
    child.on('error', () => {});
    child.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        this.state = 'serving';
        ready({ port: m.port, httpsPort: m.httpsPort });
      } else if (m.t === 'failed') failed(new Error(m.error));
      else if (m.t === 'reply') this.settle(m);
      else onMessage(this, m);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => {
      failed(new Error(`proxy worker ${slot} exited before it listened`));
      for (const c of this.calls.values()) {
        clearTimeout(c.timer);
        c.reject(new WorkerGone(`proxy worker ${slot} exited`));
      }
      this.calls.clear();
      resolve();
    }));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }

  /** timeout.kill: a worker that does not answer in time is killed (the call then ends as WorkerGone). */
  call(call: WorkerCall, timeout?: { ms: number; kill: boolean }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new WorkerGone(`proxy worker ${this.slot} is gone`));
      const id = this.nextId++;
      const entry: { resolve(v: unknown): void; reject(e: Error): void; timer?: NodeJS.Timeout } = { resolve, reject };
      if (timeout) {
        entry.timer = setTimeout(() => {
          if (timeout.kill) this.child.kill('SIGKILL');
          else {
            this.calls.delete(id);
            reject(new Error(`proxy worker ${this.slot} did not answer within ${timeout.ms} ms`));
          }
        }, timeout.ms);
      }
      this.calls.set(id, entry);
      this.send({ t: 'call', id, call });
    });
  }

  private settle(m: Extract<FromWorker, { t: 'reply' }>): void {
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    clearTimeout(c.timer);
    if (m.ok) c.resolve(m.value);
    else c.reject(new Error(m.error));
  }
}

/**
 * N proxy worker processes serving the proxy's port, steered by the data plane
 * (their primary): it keeps the route table of record, sends each change to
 * every worker and resolves it once all applied it, replaces a worker that
 * dies (the new one gets the whole table before it listens), and merges the
 * workers' access entries into its own stream.
 */
export class ProxyWorkers {
  readonly routes: AppliedRoutes;
  private readonly slots: Array<Worker | null>;
  private readonly restarts: number[];
  private readonly record = new RouteRecord();
  private readonly rates = new AppRates();
  private readonly respawns = new Set<NodeJS.Timeout>();
  /** The settings, certificates, ticket keys and ACME tokens of record, for a worker that starts later. */
  private readonly state: Omit<StackState, 'tokens'> = { settings: null, tls: null, ticketKeys: newTicketKeys().toString('base64') };
  private readonly tokens = new Map<string, NonNullable<AcmeEntry>>();
  private listen: StackListen;
  private closing = false;
  port = 0;
  httpsPort: number | null = null;

  private constructor(private readonly o: ProxyWorkersOptions) {
    this.slots = Array.from({ length: o.count }, () => null);
    this.restarts = Array.from({ length: o.count }, () => 0);
    this.listen = { ...o.listen, reusePort: o.balance === 'reuseport' };
    if (o.balance !== 'reuseport') {
      // Before the first fork: cluster reads the policy once. Round-robin is Node's default on Linux; said here so it stays so.
      cluster.schedulingPolicy = o.balance === 'shared' ? cluster.SCHED_NONE : cluster.SCHED_RR;
      cluster.setupPrimary({ exec: WORKER_MAIN, args: [], execArgv: [...PROXY_WORKER_FLAGS] });
    }
    this.routes = {
      setHosts: (app, hosts) => {
        this.record.setHosts(app, hosts);
        return this.applied({ op: 'setHosts', app, hosts: [...hosts] });
      },
      setBackends: (app, ports) => {
        this.record.setBackends(app, ports);
        return this.applied({ op: 'setBackends', app, ports: [...ports] });
      },
      shiftBackends: async (app, ports, ms): Promise<BackendShift> => {
        this.record.setBackends(app, ports);
        const busy = this.rates.rate(app) >= SLOW_START_MIN_RATE;
        const gradual = (await this.all({ op: 'shiftBackends', app, ports: [...ports], ms, busy }, true)).some(Boolean);
        return { gradual, done: this.all({ op: 'shiftDone', app }, false).then(() => undefined) };
      },
      removeApp: (app) => {
        this.record.removeApp(app);
        return this.applied({ op: 'removeApp', app });
      },
      drain: async (port, timeoutMs) =>
        (await this.all({ op: 'drain', port, timeoutMs }, false)).reduce<number>((sum, n) => sum + Number(n ?? 0), 0),
    };
  }

  /** Starts the workers; resolves once every one serves. */
  static async start(o: ProxyWorkersOptions): Promise<ProxyWorkers> {
    const pool = new ProxyWorkers(o);
    try {
      // The first one settles the ports (port 0 picks one); with reusePort the others must ask for those.
      ({ port: pool.port, httpsPort: pool.httpsPort } = await pool.spawn(0).ready);
      if (o.balance === 'reuseport') pool.listen = { ...pool.listen, httpPort: pool.port, httpsPort: pool.httpsPort };
      await Promise.all(pool.slots.map((w, i) => (w ?? pool.spawn(i)).ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  configure(settings: ProxySettings): Promise<void> {
    this.state.settings = settings;
    return this.applied({ op: 'configure', settings });
  }

  tls(tls: TlsMessage): Promise<void> {
    this.state.tls = tls;
    return this.applied({ op: 'tls', tls });
  }

  acmeToken(token: string, entry: AcmeEntry): Promise<void> {
    if (entry) this.tokens.set(token, entry);
    else this.tokens.delete(token);
    return this.applied({ op: 'acmeToken', token, entry });
  }

  async workers(): Promise<ProxyWorkerInfo[]> {
    return Promise.all(this.slots.map(async (w, i): Promise<ProxyWorkerInfo> => {
      const restarts = this.restarts[i]!;
      if (!w) return { slot: i + 1, pid: null, state: 'restarting', startedAt: null, connections: null, requests: null, open: null, restarts };
      let stats: WorkerStats | null = null;
      let state: ProxyWorkerInfo['state'] = w.state;
      if (w.member) {
        stats = (await w.call({ op: 'stats' }, { ms: STATS_TIMEOUT_MS, kill: false }).catch(() => null)) as WorkerStats | null;
        if (!stats) state = 'unresponsive';
      }
      return {
        slot: i + 1, pid: w.pid, state, startedAt: w.startedAt,
        connections: stats?.connections ?? null, requests: stats?.requests ?? null, open: stats?.open ?? null, restarts,
      };
    }));
  }

  /** Stops every worker (SIGTERM: each closes its listener and connections), SIGKILL after a grace. */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.respawns) clearTimeout(t);
    this.rates.close();
    await Promise.all(this.slots.map((w) => {
      if (!w) return;
      w.child.kill('SIGTERM');
      const kill = setTimeout(() => w.child.kill('SIGKILL'), STOP_GRACE_MS);
      return w.exited.then(() => clearTimeout(kill));
    }));
  }

  private spawn(slot: number): Worker {
    let child: ChildProcess;
    if (this.o.balance !== 'reuseport') {
      const cw = cluster.fork();
      cw.on('error', () => {}); // cluster re-emits the process's errors here
      child = cw.process;
    } else child = fork(WORKER_MAIN, [], { execArgv: [...PROXY_WORKER_FLAGS], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w = new Worker(slot + 1, child, (worker, m) => this.heard(worker, m));
    this.slots[slot] = w;
    void w.exited.then(() => this.lost(slot, w));
    return w;
  }

  private heard(w: Worker, m: FromWorker): void {
    if (m.t === 'booted') {
      // From here on every change goes to it too, after this table: nothing falls between.
      w.member = true;
      w.send({ t: 'init', listen: this.listen, state: { ...this.state, tokens: [...this.tokens] }, table: this.record.snapshot() });
    } else if (m.t === 'access') {
      for (const e of m.entries) {
        if (e.app) this.rates.count(e.app);
        this.o.onAccess(e);
      }
    }
  }

  private lost(slot: number, w: Worker): void {
    if (this.slots[slot] !== w) return;
    this.slots[slot] = null;
    if (this.closing) return;
    this.restarts[slot]!++;
    const { exitCode, signalCode } = w.child;
    const quick = Date.now() - w.startedAt < QUICK_DEATH_MS;
    this.o.log(`proxy worker ${slot + 1} (pid ${w.pid}) exited (${signalCode ?? `code ${exitCode}`}); replacing it${quick ? ` in ${RESPAWN_DELAY_MS / 1000} s` : ''}`);
    const t = setTimeout(() => {
      this.respawns.delete(t);
      if (this.closing) return;
      this.spawn(slot).ready.then(
        () => this.o.log(`proxy worker ${slot + 1} serves again (pid ${this.slots[slot]?.pid})`),
        (err: Error) => this.o.log(`proxy worker ${slot + 1} could not start: ${err.message}`),
      );
    }, quick ? RESPAWN_DELAY_MS : 0);
    this.respawns.add(t);
  }

  /** A route change: in force once every worker applied it (one that hangs is killed, and its replacement starts from the record). */
  private applied(call: WorkerCall): Promise<void> {
    return this.all(call, true).then(() => undefined);
  }

  /** Sends call to every worker that has its table; the answers of those that stay. */
  private async all(call: WorkerCall, change: boolean): Promise<unknown[]> {
    const timeout = change ? { ms: APPLY_TIMEOUT_MS, kill: true } : undefined;
    const answers = await Promise.all(this.slots.filter((w): w is Worker => !!w?.member).map((w) =>
      w.call(call, timeout).then((value) => ({ value }), (err: Error) => (err instanceof WorkerGone ? null : Promise.reject(err)))));
    return answers.filter((a) => a !== null).map((a) => a.value);
  }
}
