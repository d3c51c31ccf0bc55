import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { RunSpec } from '../apprunner/types.js';
import type { AccessEntry, BackendShift, ProxySettings, RouteControl } from '../proxy/types.js';
import type { ChallengeTokens } from '../certs/acme-issuer.js';
import type { Certificate } from '../certs/certificate.js';
import type { TlsIndex, TlsState } from '../certs/tls-index.js';
import { encodeJsonLine, readJsonLines } from '../wire/json-lines.js';
import type { Call, Event, ExitInfo, Hello, HostedProcessInfo, ProcessMeta, ProxyWorkerInfo, Reply, Request } from './protocol.js';

/** A process the data plane runs for the server: its pid, and how it ends. */
export interface HostedProcess {
  readonly id: string;
  readonly pid: number;
  readonly meta: ProcessMeta;
  readonly startedAt: number;
  readonly exited: Promise<ExitInfo>;
}

/** What Maestro's processes need of the data plane (the long-running half of Apprunner). */
export interface ProcessHost {
  spawn(spec: RunSpec, meta: ProcessMeta): Promise<HostedProcess>;
  signal(proc: HostedProcess, signal: NodeJS.Signals): void;
  foreground(proc: HostedProcess): void;
}

export interface DataplaneEvents {
  output: [app: string, tag: string, text: string];
  access: [entry: AccessEntry];
  dropped: [lines: number];
  /** The data plane went away: every hosted process is gone with it. */
  lost: [];
}

/**
 * The server's end of DATA/dataplane.sock: route changes and process orders go
 * out in order on one connection; output, access entries and exits come back.
 */
export class DataplaneClient extends EventEmitter<DataplaneEvents> implements ProcessHost {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly exits = new Map<string, (e: ExitInfo) => void>();
  private readonly early = new Map<string, ExitInfo>();
  private closing = false;
  readonly routes: RouteControl;

  private constructor(private readonly sock: net.Socket) {
    super();
    sock.on('data', readJsonLines((m) => this.receive(m as Reply | Event)));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      for (const c of this.calls.values()) c.reject(new Error('the data plane went away'));
      this.calls.clear();
      for (const [, resolve] of this.exits) resolve({ code: null, signal: 'SIGKILL' });
      this.exits.clear();
      if (!this.closing) this.emit('lost');
    });
    this.routes = {
      setHosts: (app, hosts) => void this.call({ op: 'setHosts', app, hosts: [...hosts] }).catch(() => {}),
      setBackends: (app, ports) => void this.call({ op: 'setBackends', app, ports: [...ports] }).catch(() => {}),
      shiftBackends: async (app, ports, ms): Promise<BackendShift> => {
        const gradual = (await this.call({ op: 'shiftBackends', app, ports: [...ports], ms })) as boolean;
        return { gradual, done: this.call({ op: 'shiftDone', app }).then(() => undefined) };
      },
      removeApp: (app) => void this.call({ op: 'removeApp', app }).catch(() => {}),
      drain: async (port, timeoutMs) => (await this.call({ op: 'drain', port, timeoutMs })) as number,
    };
  }

  static connect(socketPath: string): Promise<DataplaneClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new DataplaneClient(sock));
      });
      sock.once('error', reject);
    });
  }

  hello(): Promise<Hello> {
    return this.call({ op: 'hello' }) as Promise<Hello>;
  }

  /** The processes serving the proxy's port, with their connections and requests served. */
  workers(): Promise<ProxyWorkerInfo[]> {
    return this.call({ op: 'workers' }) as Promise<ProxyWorkerInfo[]>;
  }

  /** Starts the flow of output, access entries and exits (listeners must be attached first). */
  subscribe(): Promise<void> {
    return this.call({ op: 'subscribe' }).then(() => undefined);
  }

  configureProxy(settings: ProxySettings): Promise<void> {
    return this.call({ op: 'configureProxy', settings }).then(() => undefined);
  }

  async spawn(spec: RunSpec, meta: ProcessMeta): Promise<HostedProcess> {
    return this.adopt((await this.call({ op: 'spawn', spec, meta })) as HostedProcessInfo);
  }

  /** Takes over a process the data plane listed (it spawned it and has not seen it exit). */
  adopt(info: HostedProcessInfo): HostedProcess {
    const exited = new Promise<ExitInfo>((resolve) => {
      const early = info.exit ?? this.early.get(info.id);
      if (early) return resolve(early);
      this.exits.set(info.id, resolve);
    });
    void exited.then(() => void this.call({ op: 'forget', proc: info.id }).catch(() => {}));
    return { id: info.id, pid: info.pid, meta: info.meta, startedAt: info.startedAt, exited };
  }

  signal(proc: HostedProcess, signal: NodeJS.Signals): void {
    void this.call({ op: 'signal', proc: proc.id, signal }).catch(() => {});
  }

  foreground(proc: HostedProcess): void {
    void this.call({ op: 'foreground', proc: proc.id }).catch(() => {});
  }

  /**
   * Hands the certificates to the data plane's HTTPS listener, now and on every
   * change (new, renewed, removed), and the ACME challenge tokens its proxy answers.
   * Resolves to the HTTPS port.
   */
  async serveTls(certs: { index: TlsIndex; tokens: ChallengeTokens }): Promise<number | null> {
    certs.tokens.onChange = (token, entry) => this.call({ op: 'acmeToken', token, entry }).then(() => undefined);
    const send = (state: TlsState) => this.call(tlsMessage(state)) as Promise<{ httpsPort: number | null }>;
    // Changes in one turn of the event loop (many apps' hosts at a boot) go out as their last state, once.
    let latest: TlsState | null = null;
    certs.index.onReplace = (state) => {
      if (latest === null) {
        setImmediate(() => {
          const s = latest!;
          latest = null;
          void send(s).catch(() => {});
        });
      }
      latest = state;
    };
    return (await send(certs.index.state)).httpsPort;
  }

  /** Lets the app's processes (uid) reach its CouchDB gateway on `port` under the network policy. */
  grantService(uid: number, service: 'couchdb-gateway', port: number): Promise<void> {
    return this.call({ op: 'grantService', uid, service, port }).then(() => undefined);
  }

  /** Stops every app and the data plane itself (`--stop-apps`). */
  async shutdown(): Promise<void> {
    this.closing = true;
    const gone = new Promise((r) => this.sock.once('close', r));
    await this.call({ op: 'shutdown' }).catch(() => {});
    await gone;
  }

  /** Leaves the data plane serving on its own. */
  close(): void {
    this.closing = true;
    this.sock.end();
  }

  private call(req: Request): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.sock.destroyed) return reject(new Error('the data plane went away'));
      this.calls.set(id, { resolve, reject });
      this.sock.write(encodeJsonLine({ ...req, id } satisfies Call));
    });
  }

  private receive(m: Reply | Event): void {
    if ('ev' in m) {
      if (m.ev === 'output') for (const l of m.lines) this.emit('output', l.app, l.tag, l.text);
      else if (m.ev === 'access') for (const e of m.entries) this.emit('access', e);
      else if (m.ev === 'dropped') this.emit('dropped', m.lines);
      else if (m.ev === 'exit') {
        const resolve = this.exits.get(m.id);
        if (resolve) {
          this.exits.delete(m.id);
          resolve(m.exit);
        } else this.early.set(m.id, m.exit);
      }
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.ok) c.resolve(m.value);
    else c.reject(new Error(m.error));
  }
}

/** Each certificate once (many hosts share one), the hosts by index into that list. */
function tlsMessage(state: TlsState): Request {
  const list: Certificate[] = [];
  const at = (c: Certificate) => {
    let i = list.indexOf(c);
    if (i < 0) i = list.push(c) - 1;
    return i;
  };
  const hosts = [...state.certs].map(([h, c]) => [h, at(c)] as [string, number]);
  const fallback = at(state.fallback);
  return { op: 'tls', certs: list.map((c) => ({ key: c.key, chain: c.chain })), hosts, fallback, policies: [...state.policies] };
}
