import type http from 'node:http';
import { sendBadGateway } from './error-pages.js';
import type { ForwardedRequest } from './forward-headers.js';
import type { ResponseHead } from './response-parser.js';
import { UpstreamPools, type UpstreamConnection, type UpstreamExchange, type UpstreamPool } from './upstream-pool.js';

const SMALL_BODY = 16 * 1024;

/**
 * Forwards plain HTTP requests over pooled keep-alive connections. The
 * backend is chosen per request by the caller, so a client's keep-alive
 * connection never sticks to a retired process. Node's server parses the
 * client side (strictly); the app side is written and read here directly,
 * which costs a fraction of http.request + Agent per request.
 */
export class HttpForwarder {
  private readonly pools = new UpstreamPools();

  /** Starts the exchange; the caller calls clientClosed() on the response's 'close'. */
  forward(req: http.IncomingMessage, res: http.ServerResponse, port: number, fwd: ForwardedRequest): Exchange {
    const ex = new Exchange(req, res, this.pools.pool(port), fwd);
    try {
      ex.start(false);
    } catch {
      // Whatever a socket call throws is this request's 502, never the proxy's crash.
      ex.abort();
    }
    return ex;
  }

  close(): void {
    this.pools.close();
  }
}

export class Exchange implements UpstreamExchange {
  private conn: UpstreamConnection | null = null;
  private finished = false;
  private retried = false;
  private bodyPending: boolean;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly pool: UpstreamPool,
    private readonly fwd: ForwardedRequest,
  ) {
    this.bodyPending = fwd.hasBody;
  }

  start(fresh: boolean): void {
    const conn = fresh ? this.pool.connect() : this.pool.acquire();
    this.conn = conn;
    const req = this.req;
    conn.begin(this, req.method === 'HEAD');
    const h = this.fwd.headers;
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    // Header values and the target were validated by Node's parser: no CR/LF can appear.
    conn.socket.write(head + '\r\n', 'latin1');
    if (this.fwd.hasBody) this.streamBody(conn);
    else conn.requestWritten();
  }

  /** Copies the request body; Node has already decoded any chunked framing, so re-frame it. */
  private streamBody(conn: UpstreamConnection): void {
    const req = this.req;
    const socket = conn.socket;
    const chunked = this.fwd.chunked;
    const resume = () => req.resume();
    req.on('data', (chunk: Buffer) => {
      if (this.conn !== conn) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`);
        socket.write(chunk);
        ok = socket.write('\r\n');
        socket.uncork();
      } else {
        ok = socket.write(chunk);
      }
      if (!ok) {
        req.pause();
        socket.once('drain', resume);
      }
    });
    req.on('end', () => {
      this.bodyPending = false;
      if (this.conn !== conn) return;
      if (chunked) socket.write('0\r\n\r\n');
      conn.requestWritten();
    });
  }

  onHead(head: ResponseHead): void {
    const res = this.res;
    if (res.destroyed) return;
    try {
      res.writeHead(head.status, head.reason || undefined, head.headers);
    } catch {
      // A header value Node refuses to send: the app's answer cannot be relayed.
      this.conn?.destroy();
      this.conn = null;
      this.failed();
    }
  }

  onBody(chunk: Buffer): void {
    const res = this.res;
    if (res.destroyed || !this.conn) return;
    if (!res.write(chunk)) {
      const socket = this.conn.socket;
      socket.pause();
      res.once('drain', () => socket.resume());
    }
  }

  onEnd(last: Buffer | null): void {
    const conn = this.conn;
    this.finished = true;
    this.conn = null;
    // The app answered before the whole request body reached it: that
    // connection is mid-request and cannot be reused.
    if (conn && this.bodyPending) conn.destroy();
    const active = conn !== null;
    // Not active: the answer was already replaced by a 502 in onHead.
    if (!active || this.res.destroyed) return;
    // A small body goes out as one latin1 string: Node then sends head and body
    // in one write instead of a corked writev (byte-exact: latin1 maps 1:1).
    if (last) this.res.end(last.length <= SMALL_BODY ? last.toString('latin1') : last, 'latin1');
    else this.res.end();
  }

  onFail(conn: UpstreamConnection): void {
    if (conn !== this.conn || this.finished) return;
    this.conn = null;
    // A pooled connection the app had closed while idle: retry once on a new
    // one. Safe: nothing was answered and there is no body that was consumed.
    if (!this.retried && conn.uses > 0 && !conn.parser.started && !this.fwd.hasBody && !this.res.destroyed) {
      this.retried = true;
      this.start(true);
      return;
    }
    this.failed();
  }

  /** The client's response closed (sent, or the client left). */
  clientClosed(): void {
    if (!this.finished && this.conn) {
      // The client left mid-exchange: stop the app's work and drop the connection.
      const conn = this.conn;
      this.conn = null;
      conn.destroy();
    }
  }

  abort(): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    this.failed();
  }

  private failed(): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) res.destroy();
    else sendBadGateway(res);
  }
}
