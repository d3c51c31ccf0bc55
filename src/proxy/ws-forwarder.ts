import type http from 'node:http';
import type net from 'node:net';
import httpProxy from 'http-proxy';
import type { PortLoad } from './drain-tracker.js';
import { BAD_GATEWAY_BODY, rejectUpgrade } from './error-pages.js';

const kStatus = Symbol('upgradeStatus');
interface TrackedSocket extends net.Socket {
  /** What the client got: 101, the app's refusal status, or 502. */
  [kStatus]?: number;
}

/** Proxies upgrade requests (WebSockets) with http-proxy, counting each open socket on its backend. */
export class WsForwarder {
  private readonly proxy = httpProxy.createProxyServer({ ws: true, xfwd: false });
  private readonly sockets = new Set<net.Socket>();

  constructor() {
    // http-proxy emits here for a refused backend and for socket errors after
    // the upgrade; without a listener it would throw and take the server down.
    this.proxy.on('error', (_err: Error, _req: http.IncomingMessage, socket: unknown) => {
      const s = socket as TrackedSocket | undefined;
      if (!s || s.destroyed) return;
      // Nothing sent to the client yet: it still expects an HTTP answer.
      if (s.bytesWritten === 0) {
        s[kStatus] = 502;
        rejectUpgrade(s, 502, BAD_GATEWAY_BODY);
      } else {
        s.destroy();
      }
    });
    // Tie the app side to the client side: when the client goes, so does the
    // app's socket (http-proxy's pipes only follow clean ends).
    this.proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, _req: http.IncomingMessage, socket: TrackedSocket) => {
      let appSocket: net.Socket | null = null;
      proxyReq.on('response', (res: http.IncomingMessage) => {
        socket[kStatus] = res.statusCode;
      });
      proxyReq.on('upgrade', (_res: http.IncomingMessage, s: net.Socket) => {
        socket[kStatus] = 101;
        appSocket = s;
        if (socket.destroyed) s.destroy();
      });
      socket.once('close', () => {
        proxyReq.destroy();
        appSocket?.destroy();
      });
    });
  }

  /**
   * Hands an upgrade request to backend; req.headers must already hold what the
   * app should see. done(status) runs once, when the client socket closes.
   */
  forward(req: http.IncomingMessage, socket: net.Socket, head: Buffer, backend: PortLoad, done: (status: number) => void): void {
    const s = socket as TrackedSocket;
    backend.begin();
    this.sockets.add(s);
    s.once('close', () => {
      this.sockets.delete(s);
      backend.end();
      done(s[kStatus] ?? 499);
    });
    s.on('error', () => s.destroy());
    this.proxy.ws(req, s, head, { target: { host: '127.0.0.1', port: backend.port } });
  }

  /** Closes every proxied WebSocket; used on shutdown. */
  close(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.proxy.close();
  }
}
