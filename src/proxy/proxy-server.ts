import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { DrainTracker } from './drain-tracker.js';
import { NO_BACKEND_BODY, rejectUpgrade, sendNoBackend, sendPong, sendUnknownHost, unknownHostBody } from './error-pages.js';
import { requestHeaders } from './forward-headers.js';
import { HttpForwarder } from './http-forwarder.js';
import { RouteTable, hostname } from './route-table.js';
import type { AccessEntry, ProxyOptions, RouteControl } from './types.js';
import { WsForwarder } from './ws-forwarder.js';

export interface RunningProxy {
  port: number;
  routes: RouteControl;
  close(): Promise<void>;
}

/** Starts the Host-header proxy in front of every app; routes start empty. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const loads = new DrainTracker();
  const table = new RouteTable(loads);
  const httpForwarder = new HttpForwarder();
  const wsForwarder = new WsForwarder();
  const onAccess = opts.onAccess;

  const routes: RouteControl = {
    setHosts: (app, hosts) => table.setHosts(app, hosts),
    setBackends: (app, ports) => table.setBackends(app, ports),
    shiftBackends: async (app, ports, ms) => table.shiftBackends(app, ports, ms),
    removeApp: (app) => table.removeApp(app),
    drain: (port, timeoutMs) => loads.drain(port, timeoutMs),
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const start = onAccess ? performance.now() : 0;
    const socket = req.socket;
    const sourceIp = socket.remoteAddress ?? '';
    const fwd = requestHeaders(req.rawHeaders, sourceIp, (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http', false);
    const route = table.lookup(fwd.host);
    const backend = route && RouteTable.pick(route);
    if (!backend) {
      if (onAccess) res.once('close', () => onAccess(accessEntry(req, res, fwd.host, sourceIp, route?.app ?? null, null, start)));
      if (route) sendNoBackend(res);
      else if (req.url === '/_ping_' && req.method === 'GET') sendPong(res);
      else sendUnknownHost(res, hostname(fwd.host));
      return;
    }
    // Counted from here until the client's response closes, so drain() waits for it.
    backend.begin();
    const exchange = httpForwarder.forward(req, res, backend.port, fwd);
    res.once('close', () => {
      exchange.clientClosed();
      backend.end();
      if (onAccess) onAccess(accessEntry(req, res, fwd.host, sourceIp, route.app, backend.port, start));
    });
  };

  const onUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const start = onAccess ? performance.now() : 0;
    const sourceIp = socket.remoteAddress ?? '';
    const fwd = requestHeaders(req.rawHeaders, sourceIp, (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http', true);
    const route = table.lookup(fwd.host);
    const backend = route && RouteTable.pick(route);
    const log = (status: number) =>
      onAccess?.({
        app: route?.app ?? null, host: fwd.host, method: req.method ?? '', path: req.url ?? '', sourceIp,
        targetPort: backend?.port ?? null, status, ms: Math.round(performance.now() - start),
      });
    if (!route || !backend) {
      const status = route ? 503 : 404;
      rejectUpgrade(socket, status, route ? NO_BACKEND_BODY : unknownHostBody(hostname(fwd.host)));
      log(status);
      return;
    }
    req.headers = headerObject(fwd.headers);
    wsForwarder.forward(req, socket, head, backend, log);
  };

  const server = http.createServer(onRequest);
  // Every client connection, upgraded or not, so close() can end them all.
  const connections = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('upgrade', onUpgrade);
  // No 'clientError' listener on purpose: Node's default answers malformed
  // requests with 400/431/408 (only if nothing was sent yet) and drops the socket.

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
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
      wsForwarder.close();
      httpForwarder.close();
      table.close();
    }));

  return { port: (server.address() as AddressInfo).port, routes, close };
}

function accessEntry(
  req: http.IncomingMessage, res: http.ServerResponse, host: string, sourceIp: string,
  app: string | null, targetPort: number | null, start: number,
): AccessEntry {
  return {
    app, host, method: req.method ?? '', path: req.url ?? '', sourceIp, targetPort,
    // 499: the client left before an answer (nginx's convention).
    status: res.headersSent ? res.statusCode : 499,
    ms: Math.round(performance.now() - start),
  };
}

/** http-proxy forwards req.headers; duplicates are joined as Node does. */
function headerObject(raw: readonly string[]): http.IncomingHttpHeaders {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    out[k] = out[k] === undefined ? raw[i + 1] : `${out[k]}, ${raw[i + 1]}`;
  }
  return out;
}
