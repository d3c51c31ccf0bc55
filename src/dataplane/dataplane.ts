import fs from 'node:fs';
import net from 'node:net';
import { UnconfinedApprunner, type Apprunner } from '../apprunner/apprunner.js';
import { dataScope } from '../apprunner/data-scope.js';
import { detectIsolation } from '../apprunner/isolation.js';
import { parseCidr } from '../apprunner/network-policy-cidr.js';
import { installNetworkPolicy, sharedNetwork, type PortGrant } from '../apprunner/network-policy.js';
import { SandboxedApprunner } from '../apprunner/sandboxed-apprunner.js';
import type { AccessEntry } from '../proxy/types.js';
import { ProcessKeeper } from './process-keeper.js';
import type { Balance } from './proxy-workers.js';
import { startServingProxy } from './serving-proxy.js';
import { encodeJsonLine, readJsonLines } from '../wire/json-lines.js';
import { DATAPLANE_PROTOCOL, type Call, type Event, type Hello, type ListenerSpec, type Reply } from './protocol.js';

export interface DataplaneOptions {
  dataDir: string;
  socketPath: string;
  listeners: ListenerSpec;
  /** Proxy worker processes (1: the proxy runs in this process). */
  proxyWorkers: number;
  balance: Balance;
  log: (line: string) => void;
}

/** Lines and access entries kept while no server is connected; beyond this the oldest are dropped and counted. */
const MAX_BUFFERED = 100_000;
const FLUSH_MS = 50;
const STOP_GRACE_MS = 10_000;

export interface RunningDataplane {
  httpPort: number;
  /** Resolves when a server asked it to shut down (or it was signalled) and everything stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The data plane: the proxy's listeners and routes, and the app processes. It
 * serves on while the server (Maestro, git, SSH, the control socket) restarts,
 * buffering what the server must log, and takes orders from one server at a time.
 */
export async function startDataplane(o: DataplaneOptions): Promise<RunningDataplane> {
  const isolation = detectIsolation();
  /** The connection of the server that steers; events go to it once it subscribed. */
  let client: net.Socket | null = null;
  let subscribed = false;
  let output: Array<{ app: string; tag: string; text: string }> = [];
  let access: AccessEntry[] = [];
  const exits: Event[] = [];
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;

  const send = (msg: Event | Reply) => {
    if (client && !client.destroyed) client.write(encodeJsonLine(msg));
  };
  const flush = () => {
    timer = null;
    if (!client || !subscribed) return;
    if (dropped) send({ ev: 'dropped', lines: dropped });
    dropped = 0;
    for (const e of exits.splice(0)) send(e);
    if (output.length) send({ ev: 'output', lines: output });
    if (access.length) send({ ev: 'access', entries: access });
    output = [];
    access = [];
  };
  const queued = () => {
    if (output.length + access.length > MAX_BUFFERED) {
      (output.length > access.length ? output : access).shift();
      dropped++;
    }
    if (subscribed && !timer) timer = setTimeout(flush, FLUSH_MS);
  };

  // The proxy (HTTP, the edge, HTTPS), here or in proxy workers; the server sends the certificates (op 'tls').
  const proxy = await startServingProxy({
    listen: { host: o.listeners.host, httpPort: o.listeners.httpPort, httpsPort: o.listeners.httpsPort },
    count: o.proxyWorkers, balance: o.balance, log: o.log,
    onAccess: (e) => {
      access.push(e);
      queued();
    },
  });
  // The policy is in force before the keeper can spawn anything; it lives as long as the apps do.
  const network = isolation.isolation === 'sandbox'
    ? await installNetworkPolicy({
      scope: dataScope(o.dataDir), publicPorts: (proxy.httpsPort !== null ? [proxy.port, proxy.httpsPort] : [proxy.port]).sort((a, b) => a - b), denyEgress: o.listeners.denyEgress.map(parseCidr), log: o.log,
    })
    : sharedNetwork('the sandbox is off');
  const apprunner: Apprunner = isolation.isolation === 'sandbox' ? new SandboxedApprunner(o.dataDir, network) : new UnconfinedApprunner();
  // A fresh data plane owns nothing yet: whatever a killed one (or a server before the data
  // plane existed) left in this data folder's cgroups goes, before anything is spawned.
  const swept = await apprunner.sweepLeftovers(() => false);
  if (swept.killed) o.log(`stopped ${swept.killed} process(es) a previous run left in this data folder's cgroups`);
  const keeper = new ProcessKeeper(apprunner, {
    output: (app, tag, text) => {
      output.push({ app, tag, text });
      queued();
    },
    exit: (id, exit) => {
      exits.push({ ev: 'exit', id, exit });
      if (subscribed && !timer) timer = setTimeout(flush, 0);
    },
  });
  const { routes } = proxy;
  const startedAt = Date.now();

  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    (stopping ??= (async () => {
      o.log('stopping: apps, then the proxy');
      ipc.close();
      await keeper.stopAll(STOP_GRACE_MS);
      apprunner.close();
      await network.close();
      await proxy.close();
      flush();
      client?.end();
      fs.rmSync(o.socketPath, { force: true });
      finish();
    })());

  const handle = async (call: Call): Promise<unknown> => {
    switch (call.op) {
      case 'hello': {
        const hello: Hello = {
          protocol: DATAPLANE_PROTOCOL, pid: process.pid, startedAt, listeners: o.listeners, httpPort: proxy.port, httpsPort: proxy.httpsPort,
          proxyWorkers: o.proxyWorkers, isolation: apprunner.isolation, network: network.summary, processes: keeper.list(),
        };
        return hello;
      }
      case 'subscribe': {
        subscribed = true;
        setImmediate(flush);
        return null;
      }
      case 'configureProxy': return proxy.configure(call.settings);
      case 'setHosts': return routes.setHosts(call.app, call.hosts);
      case 'setBackends': return routes.setBackends(call.app, call.ports);
      case 'shiftBackends': {
        const shift = await routes.shiftBackends(call.app, call.ports, call.ms);
        shifts.set(call.app, shift.done);
        return shift.gradual;
      }
      case 'shiftDone': return shifts.get(call.app);
      case 'removeApp': return routes.removeApp(call.app);
      case 'drain': return routes.drain(call.port, call.timeoutMs);
      case 'workers': return proxy.workers();
      case 'spawn': return keeper.spawn(call.spec, call.meta);
      case 'signal': return keeper.signal(call.proc, call.signal);
      case 'foreground': return keeper.foreground(call.proc);
      case 'forget': return keeper.forget(call.proc);
      case 'tls': {
        const { op: _, ...tls } = call;
        await proxy.tls(tls);
        return { httpsPort: proxy.httpsPort };
      }
      case 'acmeToken': {
        await proxy.acmeToken(call.token, call.entry);
        return null;
      }
      case 'grantService': {
        const key = `${call.uid}:${call.service}`;
        grants.get(key)?.revoke();
        grants.set(key, network.grantService(call.uid, call.service, call.port));
        return null;
      }
      case 'shutdown': {
        setImmediate(() => void shutdown());
        return null;
      }
    }
  };
  const shifts = new Map<string, Promise<void>>();
  const grants = new Map<string, PortGrant>();

  fs.rmSync(o.socketPath, { force: true });
  const ipc = net.createServer((sock) => {
    // One server steers at a time: a new one (after a restart) replaces the old connection.
    if (client && client !== sock) client.destroy();
    client = sock;
    subscribed = false;
    o.log('a server connected');
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      if (client === sock) {
        client = null;
        subscribed = false;
        o.log('the server disconnected; serving on');
      }
    });
    sock.on('data', readJsonLines((m) => {
      const call = m as Call;
      handle(call).then(
        (value) => send({ id: call.id, ok: true, value }),
        (err: Error) => send({ id: call.id, ok: false, error: err.message }),
      );
    }));
  });
  await new Promise<void>((resolve, reject) => {
    ipc.once('error', reject);
    const mask = process.umask(0o177);
    ipc.listen(o.socketPath, () => {
      process.umask(mask);
      resolve();
    });
  });
  fs.chmodSync(o.socketPath, 0o600);
  const workers = o.proxyWorkers > 1 ? `${o.proxyWorkers} proxy workers (${o.balance})` : 'the proxy in this process';
  o.log(`serving http on ${o.listeners.host}:${proxy.port} with ${workers}; isolation ${apprunner.isolation}; network ${network.summary.mode}${network.summary.reason ? ` (${network.summary.reason})` : ''}`);
  return { httpPort: proxy.port, done, shutdown };
}
