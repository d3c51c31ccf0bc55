import http from 'node:http';
import type { PortLoad } from './drain-tracker.js';
import { sendBadGateway } from './error-pages.js';
import { responseHeaders, type ForwardedRequest } from './forward-headers.js';

const BACKEND_HOST = '127.0.0.1';

/**
 * Forwards plain HTTP requests to a backend port over pooled keep-alive
 * connections. The backend is chosen per request by the caller, so a client's
 * keep-alive connection never sticks to a retired process.
 */
export class HttpForwarder {
  private readonly agent = new http.Agent({
    keepAlive: true,
    // LIFO keeps the few warmest connections busy and lets the rest time out.
    scheduling: 'lifo',
    maxFreeSockets: 1024,
    // Idle upstream connections are dropped before the app's own keep-alive
    // timeout would close them under a request (Node apps hint 5 s; the agent
    // honours the hint minus 1 s, this is the ceiling for apps that send none).
    timeout: 30_000,
    noDelay: true,
  } as http.AgentOptions);

  /** Sends req to backend; calls load.end() exactly once when res closes. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, backend: PortLoad, fwd: ForwardedRequest): void {
    this.attempt(req, res, backend.port, fwd, true);
  }

  private attempt(req: http.IncomingMessage, res: http.ServerResponse, port: number, fwd: ForwardedRequest, mayRetry: boolean): void {
    const up = http.request({
      agent: this.agent,
      host: BACKEND_HOST,
      port,
      method: req.method,
      path: req.url,
      headers: fwd.headers,
    });
    let answered = false;
    up.on('response', (ur: http.IncomingMessage) => {
      answered = true;
      if (res.destroyed) {
        up.destroy();
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, responseHeaders(ur.rawHeaders));
      ur.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) {
          ur.pause();
          res.once('drain', () => ur.resume());
        }
      });
      ur.on('end', () => res.end());
      // The app's connection broke mid-body: the client must see a broken response, not a short one.
      ur.on('error', () => res.destroy());
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        res.destroy();
        return;
      }
      // A pooled connection the app closed while idle: retry once on a fresh
      // one, which is safe because nothing of the request has been consumed.
      if (mayRetry && !fwd.hasBody && up.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        if (!res.destroyed) this.attempt(req, res, port, fwd, false);
        return;
      }
      if (res.headersSent || res.destroyed) res.destroy();
      else sendBadGateway(res);
    });
    // The client went away: stop the app's work on it too.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    if (fwd.hasBody) {
      if (mayRetry) req.on('error', () => up.destroy());
      req.pipe(up);
    } else {
      up.end();
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
