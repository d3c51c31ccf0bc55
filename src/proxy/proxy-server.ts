import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkRequest } from './client-request.js';
import { DrainTracker } from './drain-tracker.js';
import { sendBadGateway, sendNoBackend, sendPong, sendRefusal, sendUnknownHost } from './error-pages.js';
import { requestHeaders } from './forward-headers.js';
import { HttpForwarder, type ClientSide, type Forwarding } from './http-forwarder.js';
import { OpenExchanges, type OpenByApp } from './open-exchanges.js';
import { RouteTable } from './route-table.js';
import { decideRoute } from './route-decision.js';
import { accessEntry } from './access-entry.js';
import type { AccessEntry, ProxyOptions, ProxySettings, RouteControl } from './types.js';
import { tunnel } from './upgrade-tunnel.js';

export interface RunningProxy {
  port: number;
  routes: RouteControl;
  /** Client connections open now. */
  connections(): number;
  /** Requests and WebSockets open now, per app. */
  open(): OpenByApp;
  /** Applies new settings to requests from now on. */
  configure(settings: ProxySettings): void;
  /** The request and upgrade handlers, for another listener (HTTPS) to hand its traffic to. */
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void;
  close(): Promise<void>;
}

export const DEFAULT_SETTINGS: ProxySettings = { baseDomain: 'localhost', requestTimeoutMs: 30_000, idleTimeoutMs: 60_000, upstreamIdleTimeoutMs: 30_000 };

/** Starts the Host-header proxy in front of every app; routes start empty. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const loads = new DrainTracker();
  const table = new RouteTable(loads);
  const open = new OpenExchanges();
  // One object the forwarder reads at each request, so configure() needs no restart.
  const timeouts = { requestMs: 0, idleMs: 0, upstreamIdleMs: 0 };
  let baseDomain = '';
  const configure = (s: ProxySettings) => {
    timeouts.requestMs = s.requestTimeoutMs;
    timeouts.idleMs = s.idleTimeoutMs;
    timeouts.upstreamIdleMs = s.upstreamIdleTimeoutMs ?? DEFAULT_SETTINGS.upstreamIdleTimeoutMs;
    baseDomain = s.baseDomain.toLowerCase();
  };
  configure({
    baseDomain: opts.baseDomain ?? DEFAULT_SETTINGS.baseDomain,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_SETTINGS.requestTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_SETTINGS.idleTimeoutMs,
    upstreamIdleTimeoutMs: opts.upstreamIdleTimeoutMs ?? DEFAULT_SETTINGS.upstreamIdleTimeoutMs,
  });
  const ownForwarder = new HttpForwarder(timeouts);
  const httpForwarder: Forwarding = opts.forwarder ?? ownForwarder;
  const onAccess = opts.onAccess;
  const edge = opts.edge;

  const routes: RouteControl = {
    setHosts: (app, hosts) => table.setHosts(app, hosts),
    setBackends: (app, ports) => table.setBackends(app, ports),
    shiftBackends: async (app, ports, ms, busy) => table.shiftBackends(app, ports, ms, busy),
    removeApp: (app) => table.removeApp(app),
    drain: (port, timeoutMs) => loads.drain(port, timeoutMs),
  };

  /**
   * One request from a client, plain or an upgrade (then `upgrade` holds the
   * bytes after its head and `res` writes on the raw socket).
   */
  const handle = (req: http.IncomingMessage, res: http.ServerResponse, upgrade: Buffer | null): void => {
    const start = onAccess ? performance.now() : 0;
    const socket = req.socket;
    const sourceIp = socket.remoteAddress ?? '';
    const log = (app: string | null, port: number | null, hostHeader: string) => {
      if (onAccess) res.once('close', () => onAccess(accessEntry(req, res, hostHeader, sourceIp, app, port, start)));
    };
    const target = checkRequest(req);
    if (target !== null && 'status' in target) {
      log(null, null, req.headers.host ?? '');
      sendRefusal(res, target.status, target.why);
      return;
    }
    const path = target === null ? req.url! : target.path;
    const proto = (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const fwd = requestHeaders(req.rawHeaders, sourceIp, proto, upgrade !== null, path, target?.authority ?? null);
    // HTTPS's hook (ACME challenges, redirects, HSTS); an upgrade gets only its headers.
    if (edge && edge(req, upgrade === null ? res : null, fwd)) return;
    const decision = decideRoute(table, req.method, path, fwd.host, baseDomain);
    switch (decision.kind) {
      case 'pong':
        log(null, null, fwd.host);
        return sendPong(res);
      case 'unknown-host':
        log(null, null, fwd.host);
        return sendUnknownHost(res, decision.hostname);
      case 'no-backend':
        log(decision.app, null, fwd.host);
        return sendNoBackend(res);
    }
    const { app, backend } = decision;
    // Counted from here until the client's response closes, so drain() waits for it.
    backend.begin();
    open.begin(app);
    let upgraded = false;
    let exchange: ClientSide | null = null;
    res.once('close', () => {
      exchange?.clientClosed();
      backend.end();
      open.end(app, upgraded);
      if (onAccess) onAccess(accessEntry(req, res, fwd.host, sourceIp, app, backend.port, start));
    });
    const to = { app, port: backend.port };
    if (upgrade === null) {
      exchange = httpForwarder.forward(req, res, to, fwd);
      return;
    }
    // An upgrade's body, if any, is part of what follows the 101.
    fwd.hasBody = false;
    exchange = ownForwarder.forward(req, res, to, fwd, (appSocket, head, rest) => {
      res.statusCode = 101;
      upgraded = true;
      open.upgraded(app);
      tunnel(socket, appSocket, head, upgrade, rest);
    });
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    try {
      handle(req, res, null);
    } catch {
      failRequest(res);
    }
  };

  const onUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    // The same response machinery as plain requests, on the raw socket: a
    // refusal or a non-101 answer is framed like any response, then the
    // connection closes.
    const res = new http.ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    res.once('finish', () => socket.end());
    try {
      handle(req, res, head);
    } catch {
      failRequest(res);
    }
  };

  const server = http.createServer(onRequest);
  // Node drops headers past its count limit silently (a Content-Length among
  // them would lose the body); keep all, bounded by the 16 KB head limit, and
  // refuse too many with a 431 (client-request.ts).
  server.maxHeadersCount = 0;
  // Every client connection, upgraded or not, so close() can end them all.
  const connections = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('upgrade', onUpgrade);
  // No 'clientError' listener on purpose: Node's default answers malformed
  // requests with 400/431/408 (only if nothing was sent yet) and drops the socket.

  opts.seed?.(routes);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // reusePort is not in @types/node 20; Node 20 ignores it.
    server.listen({ port: opts.port, host: opts.host, reusePort: opts.reusePort } as net.ListenOptions, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {
    /* listening errors after start are not fatal to the platform */
  });

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of connections) socket.destroy();
      httpForwarder.close();
      if (httpForwarder !== ownForwarder) ownForwarder.close();
      table.close();
    }));

  return {
    port: (server.address() as AddressInfo).port, routes, connections: () => connections.size, open: () => open.snapshot(),
    configure, onRequest, onUpgrade, close,
  };
}

/** An exception while starting an exchange: that client gets a 502, nobody else notices. */
function failRequest(res: http.ServerResponse): void {
  try {
    if (res.headersSent) res.destroy();
    else sendBadGateway(res);
  } catch {
    res.destroy();
  }
}
