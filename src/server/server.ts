import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import type http from 'node:http';
import { UnconfinedApprunner, type Apprunner } from '../apprunner/apprunner.js';
import { detectIsolation } from '../apprunner/isolation.js';
import { joinNetworkPolicy } from '../apprunner/network-policy.js';
import { SandboxedApprunner } from '../apprunner/sandboxed-apprunner.js';
import { createDispatcher } from '../control/command-table.js';
import { appsCommands } from '../control/commands/apps.js';
import { dashboardCommands } from '../control/commands/dashboard.js';
import { deployCommands } from '../control/commands/deploys.js';
import { logsCommands } from '../control/commands/logs.js';
import { releaseCommands } from '../control/commands/releases.js';
import { serverInfoCommands } from '../control/commands/server-info.js';
import { resourceCommands } from '../control/commands/resources.js';
import { runtimeCommands } from '../control/commands/runtimes.js';
import { couchdbCommands } from '../control/commands/couchdb.js';
import { CouchService } from '../couchdb/couch-service.js';
import { keyCommands } from '../ssh/key-commands.js';
import { dropAppFromKeys } from '../ssh/key-scopes.js';
import { certsCommands } from '../control/commands/certs.js';
import { Certs } from '../certs/cert-manager.js';
import { startLegacyEndpoints } from '../legacy/legacy-endpoints.js';
import { startSshServer, type SshServerHandle } from '../ssh/ssh-server.js';
import type { CommandServices, ServerInfo } from '../control/commands/services.js';
import { startControlServer } from '../control/control-server.js';
import { DashboardAuth } from '../dashboard/auth.js';
import { startPlatformDashboard } from '../dashboard/platform-dashboard.js';
import type { Dispatch } from '../control/types.js';
import { startGitHttpServer } from '../git/git-http-server.js';
import { PushDeploys } from '../git/push-deploy.js';
import { PushSessions } from '../git/push-sessions.js';
import { createBareRepo, installHooks } from '../git/repos.js';
import { AppLogs } from '../logs/app-log.js';
import { Maestro } from '../maestro/maestro.js';
import { MetricsCollector, maestroFleet } from '../metrics/metrics-collector.js';
import { MetricsToken } from '../metrics/metrics-token.js';
import { launchDataplane } from '../dataplane/launcher.js';
import type { AccessEntry } from '../proxy/types.js';
import { DataPaths } from '../state/paths.js';
import { writeFileAtomic } from '../state/atomic-file.js';
import { StateStore } from '../state/store.js';
import type { ServerOptions } from './server-options.js';
import type { ServerLog } from './server-log.js';

export interface RunningServer {
  info: ServerInfo;
  maestro: Maestro;
  dispatch: Dispatch;
  /** Stops the server; the apps and the proxy serve on unless stopApps (default: --stop-apps). */
  stop(stopApps?: boolean): Promise<void>;
}

/**
 * Starts everything `platformx server` runs: state, Maestro (and every app's
 * current release), the proxy, git over HTTP and the control socket.
 */
export async function startServer(opts: ServerOptions, log: ServerLog): Promise<RunningServer> {
  const paths = new DataPaths(opts.data);
  fs.mkdirSync(paths.root, { recursive: true, mode: 0o700 });
  fs.chmodSync(paths.root, 0o700);
  fs.mkdirSync(paths.npmCache, { recursive: true });
  const store = new StateStore(paths.stateFile);
  const logs = new AppLogs((app) => paths.logsDir(app));

  // The proxy and the app processes live in the data plane, which outlives this server.
  const dataplane = await launchDataplane({
    socketPath: paths.dataplaneSocket, dataDir: paths.root, logFile: paths.dataplaneLog,
    listeners: { host: opts.host, httpPort: opts.httpPort, httpsPort: opts.httpsPort, denyEgress: opts.denyEgress.map((c) => c.text) }, proxyWorkers: opts.proxyWorkers, log,
  });
  const dp = dataplane.client;
  if (dataplane.reused) log(`data plane pid ${dataplane.hello.pid} kept serving (${dataplane.hello.processes.length} app process(es))`);
  else log(`data plane started (pid ${dataplane.hello.pid})`);
  const logAccess = accessLogger(logs);
  dp.on('access', logAccess);
  // Metrics read Maestro only when asked (a page, a scrape), by which time it exists.
  const metrics = new MetricsCollector(paths.root, maestroFleet(() => maestro, {
    proxyWorkers: () => dp.workers(),
    certificates: () => certs?.served() ?? [],
  }));
  dp.on('access', metrics.onAccess);
  dp.on('output', (app, tag, text) => logs.get(app).write(tag, text));
  dp.on('dropped', (n) => log(`the data plane dropped ${n} log line(s) while no server was connected`));
  await dp.subscribe();
  // Given on every start: a data plane kept from the last server takes this server's flags.
  await dp.configureProxy({
    baseDomain: opts.baseDomain, requestTimeoutMs: opts.requestTimeoutMs, idleTimeoutMs: opts.idleTimeoutMs, upstreamIdleTimeoutMs: opts.upstreamIdleTimeoutMs,
  });
  // HTTPS: this server keeps the certificates (store, ACME, renewal); the data plane's
  // listener serves them, and gets every change (and the ACME challenge tokens) at once.
  const certs = opts.httpsPort === null ? null : await Certs.open({
    dir: paths.certsDir, store, logs, baseDomain: opts.baseDomain, acme: opts.acme, log: (line) => log(line),
  });
  const httpsPort = certs ? await dp.serveTls(certs) : null;
  const isolation = detectIsolation();
  let apprunner: Apprunner = new UnconfinedApprunner();
  // The data plane owns the nftables table its apps need; builds, run from here, join its app cgroup.
  const network = dataplane.hello.network;
  if (isolation.isolation === 'sandbox') {
    const sandboxed = new SandboxedApprunner(paths.root, joinNetworkPolicy(network));
    log(`isolation: each app runs as its own user in bubblewrap; limits: ${sandboxed.cgroups.describe()}`);
    if (network.mode === 'isolated') {
      log(`network: apps reach the internet, the proxy and their own ports; other loopback ports and ${network.refused.join(', ')} are refused (nftables ${network.table})`);
    } else {
      log(`WARNING: apps share this machine's network: each can connect to every port on it (other apps, git, SSH, DNode) and to 169.254.169.254: ${network.reason}. apps:info reports 'network: shared'.`);
    }
    apprunner = sandboxed;
  } else {
    log(`WARNING: apps are NOT isolated from each other or from this server: ${isolation.reason}. apps:info reports 'isolation: none' and 'network: shared'.`, { level: 'warn' });
  }
  const maestro = new Maestro({
    store, paths, routes: certs ? certs.watch(dp.routes) : dp.routes, apprunner, processes: dp, logs,
    baseDomain: opts.baseDomain, keepBuilds: opts.keep, keepReleases: opts.keepReleases,
    drainTimeoutMs: opts.drainTimeoutMs, bootTimeoutMs: opts.bootTimeoutMs, slowStartMs: opts.slowStartMs,
    triggers: {
      appCreated: [(app) => createBareRepo(paths.repo(app), paths.controlSocket)],
      appDestroyed: [dropAppFromKeys],
    },
  });
  maestro.events.on('release', (e) => metrics.prom.release(e));
  metrics.start();
  const couch = opts.couchdb && new CouchService({
    ...opts.couchdb, dir: paths.couchdb, log,
    app: (name) => (Object.hasOwn(store.get().apps, name) ? store.get().apps[name]! : null),
    setConfig: async (app, set, unset, sinks) => {
      // The app is about to get COUCHDB_URL: the network policy must let it reach the gateway.
      const uid = store.get().apps[app]?.uid;
      if (couch && uid != null) await dp.grantService(uid, 'couchdb-gateway', couch.gatewayPort);
      return maestro.setConfig(app, set, unset, true, 'couchdb', sinks);
    },
    event: (app, text) => logs.get(app).write('platform[couchdb]', text),
  });
  const sessions = new PushSessions();
  const pushes = new PushDeploys(maestro, sessions, paths);

  const info: ServerInfo = {
    pid: process.pid, host: opts.host, httpPort: dataplane.hello.httpPort, httpsPort, gitHttpPort: 0, sshPort: null, dnodePort: null, dashboardPort: null,
    baseDomain: opts.baseDomain, sshFingerprint: null, isolation: apprunner.isolation, network, dataDir: paths.root, couchdbGatewayPort: null,
  };
  const services: CommandServices = { maestro, logs, store, info: () => info, proxyWorkers: () => dp.workers() };
  const dashboardAuth = new DashboardAuth();
  const metricsToken = new MetricsToken(path.join(paths.root, 'metrics-token'));
  const dispatch = createDispatcher([
    ...appsCommands(services),
    ...deployCommands(services),
    ...logsCommands(services),
    ...releaseCommands(services),
    ...serverInfoCommands(services),
    ...resourceCommands(services),
    ...runtimeCommands(services),
    ...keyCommands(store),
    ...certsCommands(services, certs),
    ...dashboardCommands({ auth: dashboardAuth, metricsToken, info: () => info }),
    ...couchdbCommands(couch),
  ]);

  for (const app of maestro.apps.list()) installHooks(paths.repo(app.name), paths.controlSocket);
  const control = await startControlServer(paths.controlSocket, dispatch, pushes);
  const gitHttp = await startGitHttpServer({ host: opts.host, port: opts.gitHttpPort, apps: maestro.apps, paths, sessions, priority: apprunner });
  info.gitHttpPort = gitHttp.port;

  const legacy = await startLegacyEndpoints({
    maestro, paths, dnodeHost: opts.dnodeHost, dnodePort: opts.dnodePort, dnodeAllow: opts.dnodeAllow,
    sshPort: () => info.sshPort, log: (line) => log(`legacy: ${line}`),
  });
  info.dnodePort = legacy.dnodePort;

  let ssh: SshServerHandle | null = null;
  if (opts.sshPort !== null) {
    ssh = await startSshServer({
      host: opts.host, port: opts.sshPort, hostKeyPath: paths.hostKey, store, dispatch,
      pushSessions: sessions, priority: apprunner, repoPath: (app) => paths.repo(app), log: (line) => log(`ssh: ${line}`),
      onRsync: legacy.onRsync, onTcpForward: legacy.onTcpForward,
    });
    info.sshPort = ssh.port;
    info.sshFingerprint = ssh.fingerprint;
  }

  const dashboard = opts.dashboardPort === null ? null : await startPlatformDashboard({
    host: opts.host, port: opts.dashboardPort, maestro, logs, store, dispatch, auth: dashboardAuth, metricsToken, metrics,
  });
  info.dashboardPort = dashboard?.port ?? null;
  // Apps find their database's gateway up when they start.
  if (couch) {
    await couch.start();
    info.couchdbGatewayPort = couch.gatewayPort;
    // Each app with a database may reach the gateway (its own platform service); the backend stays refused.
    for (const name of couch.databaseApps()) {
      const uid = store.get().apps[name]?.uid;
      if (uid != null) await dp.grantService(uid, 'couchdb-gateway', couch.gatewayPort);
    }
  }
  await maestro.startAll(log, dataplane.hello.processes.filter((p) => !p.exit).map((p) => dp.adopt(p)));
  // Without its data plane nothing serves: exit, and the next start begins anew (apps included).
  dp.once('lost', () => {
    log('the data plane exited: every app went with it; exiting so the next start brings everything back');
    process.exit(1);
  });
  certs?.start();
  writeFileAtomic(paths.serverInfo, JSON.stringify(info, null, 2) + '\n');

  let stopping: Promise<void> | null = null;
  const stop = (stopApps = opts.stopApps) =>
    (stopping ??= (async () => {
      await Promise.all([closeServer(control), closeServer(gitHttp.server), ssh?.close(), legacy.close(), dashboard?.close(), couch?.stop()]);
      if (stopApps) {
        await maestro.stopAll();
        await dp.shutdown();
      } else dp.close();
      metrics.stop();
      apprunner.close();
      certs?.close();
      logs.closeAll();
      fs.rmSync(paths.controlSocket, { force: true });
    })());
  return { info, maestro, dispatch, stop };
}

function closeServer(server: net.Server | http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as http.Server).closeAllConnections?.();
  });
}

/** The router's access line in the app's log, Heroku-style. */
function accessLogger(logs: AppLogs): (e: AccessEntry) => void {
  return (e) => {
    if (!e.app) return;
    logs.get(e.app).write(
      'router',
      `host_header=${e.host} target_port=${e.targetPort ?? '-'} source_ip=${e.sourceIp} method=${e.method} path=${JSON.stringify(e.path)} status=${e.status} ms=${e.ms}`,
    );
  };
}
