// The HTTPS port: TLS with SNI, HTTP/2 over ALPN and HTTP/1.1 fallback, handing
// every request and upgrade to the same handlers the plain HTTP proxy uses.
// Apps stay HTTP/1.1 upstream; WebSockets come over the HTTP/1.1 path.
import type http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { once } from 'node:events';
import { H2Request, H2Response, TlsResponse } from './h2-adapter.js';
import type { TlsIndex } from './tls-index.js';

export interface ProxyHandlers {
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void;
}

export interface HttpsListener {
  port: number;
  /** Client connections open now. */
  connections(): number;
  close(): Promise<void>;
}

/** As Node's HTTP server: idle keep-alive connections close after 5 s. */
const KEEP_ALIVE_MS = 5_000;
/** An HTTP/2 connection with no stream activity for this long is closed (GOAWAY). */
const H2_IDLE_MS = 60_000;

/** reusePort: share the port with other processes' listeners (the data plane's proxy workers). */
export async function startHttpsListener(o: { host: string; port: number; reusePort?: boolean; index: TlsIndex; proxy: ProxyHandlers }): Promise<HttpsListener> {
  const fallback = o.index.fallbackCertificate;
  const server = http2.createSecureServer({
    allowHTTP1: true,
    key: fallback.key,
    cert: fallback.chain,
    SNICallback: (servername, cb) => cb(null, o.index.contextFor(servername)),
    Http1ServerResponse: TlsResponse,
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
  });
  (server as unknown as http.Server).keepAliveTimeout = KEEP_ALIVE_MS;
  // The listener's own context is the one whose ticket callback OpenSSL runs (see session-tickets.ts).
  // _sharedCreds is Node's internal name for it; without it the own context keeps Node's keys.
  const ownContext = () => {
    const creds = (server as unknown as { _sharedCreds?: tls.SecureContext })._sharedCreds;
    if (creds) o.index.tickets?.attach(creds);
  };
  ownContext();
  o.index.onFallbackChange = (cert) => {
    server.setSecureContext({ key: cert.key, cert: cert.chain });
    ownContext();
  };

  server.on('request', (req: http2.Http2ServerRequest | http.IncomingMessage, res: http2.Http2ServerResponse | http.ServerResponse) => {
    // An h2 CONNECT names no path: there is nothing to forward to an app.
    if (req.url === undefined || req.url === '') {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('CONNECT is not served here\n');
      return;
    }
    o.proxy.onRequest(req as http.IncomingMessage, res as http.ServerResponse);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => o.proxy.onUpgrade(req, socket, head));
  server.on('session', (session: http2.ServerHttp2Session) => session.setTimeout(H2_IDLE_MS, () => session.close()));

  // Every connection, handshaken or not, so close() can end them all.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  // Rejects with the bind error (EADDRINUSE…), which stops the server's start.
  // reusePort is not in @types/node 20; Node 20 ignores it.
  await once(server.listen({ port: o.port, host: o.host, reusePort: o.reusePort } as net.ListenOptions), 'listening');
  // Later errors are not fatal to the platform.
  server.on('error', () => {});

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    if (closed) return closed;
    o.index.onFallbackChange = null;
    closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    return closed;
  };
  return { port: (server.address() as AddressInfo).port, connections: () => sockets.size, close };
}
