import type http from 'node:http';
import type net from 'node:net';
import { Deadlines, type Timed } from './deadlines.js';
import { sendBadGateway, sendGatewayTimeout } from './error-pages.js';
import type { ForwardedRequest } from './forward-headers.js';
import type { ResponseHead } from './response-parser.js';
import { UpstreamPools, type UpstreamConnection, type UpstreamExchange, type UpstreamPool } from './upstream-pool.js';

const SMALL_BODY = 16 * 1024;

export interface ForwardTimeouts {
  /** From the request being written in full to the app's response head. */
  requestMs: number;
  /** Longest pause while a request or response body streams. */
  idleMs: number;
  /** Longest an idle app connection is kept for reuse. */
  upstreamIdleMs: number;
}

/** Where a request goes: the app's name (for its 504) and one of its ports. */
export interface ForwardTarget {
  app: string;
  port: number;
}

/** What the proxy server needs of an HTTP forwarder (the bench runs undici's in this place). */
export interface Forwarding {
  forward(req: http.IncomingMessage, res: http.ServerResponse, target: ForwardTarget, fwd: ForwardedRequest): ClientSide;
  close(): void;
}

export interface ClientSide {
  /** The client's response closed (sent, or the client left). */
  clientClosed(): void;
}

/** Takes over a 101 answer: the app's socket, its checked head and the bytes after it. */
export type UpgradeHandler = (appSocket: net.Socket, head: ResponseHead, rest: Buffer | null) => void;

/**
 * Forwards plain HTTP requests over pooled keep-alive connections. The
 * backend is chosen per request by the caller, so a client's keep-alive
 * connection never sticks to a retired process. Node's server parses the
 * client side (strictly); the app side is written and read here directly,
 * which costs a fraction of http.request + Agent per request.
 */
export class HttpForwarder implements Forwarding {
  private readonly pools: UpstreamPools;
  private readonly deadlines = new Deadlines();

  constructor(private readonly timeouts: ForwardTimeouts) {
    this.pools = new UpstreamPools(() => timeouts.upstreamIdleMs);
  }

  forward(req: http.IncomingMessage, res: http.ServerResponse, target: ForwardTarget, fwd: ForwardedRequest, upgrade?: UpgradeHandler): Exchange {
    const ex = new Exchange(req, res, this.pools.pool(target.port), fwd, target.app, this.timeouts, this.deadlines, upgrade ?? null);
    ex.start();
    return ex;
  }

  close(): void {
    this.pools.close();
    this.deadlines.close();
  }
}

/**
 * One request and its response. Every call that writes to the client is
 * guarded: whatever goes wrong ends this exchange (502 if nothing was sent
 * yet, else a closed client connection), never the proxy.
 */
export class Exchange implements UpstreamExchange, Timed, ClientSide {
  private conn: UpstreamConnection | null = null;
  private finished = false;
  private retried = false;
  private bodyPending: boolean;
  private awaitingHead = false;
  /** A response head, and body pieces after it, waiting for the end of the read they came in. */
  private head: ResponseHead | null = null;
  private held: Buffer[] | null = null;
  deadline = Infinity;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly pool: UpstreamPool,
    private readonly fwd: ForwardedRequest,
    private readonly app: string,
    private readonly timeouts: ForwardTimeouts,
    private readonly deadlines: Deadlines,
    private readonly upgrade: UpgradeHandler | null,
  ) {
    this.bodyPending = fwd.hasBody;
  }

  start(): void {
    this.deadlines.watch(this);
    try {
      this.send(this.upgrade !== null);
    } catch {
      this.abort();
    }
  }

  private send(fresh: boolean): void {
    // An upgrade gets a connection of its own: after a 101 it is a tunnel, after anything else it is closed.
    const conn = fresh ? this.pool.connect() : this.pool.acquire();
    this.conn = conn;
    const req = this.req;
    conn.begin(this, req.method === 'HEAD', this.upgrade !== null);
    const h = this.fwd.headers;
    let head = `${req.method} ${this.fwd.path} HTTP/1.1\r\n`;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    // Header values and the target were validated by Node's parser: no CR/LF can appear.
    conn.socket.write(head + '\r\n', 'latin1');
    if (this.fwd.hasBody) {
      this.deadline = this.deadlines.now + this.timeouts.idleMs;
      this.streamBody(conn);
    } else this.requestWritten(conn);
  }

  private requestWritten(conn: UpstreamConnection): void {
    this.bodyPending = false;
    if (!conn.parser.headDelivered) {
      this.awaitingHead = true;
      this.deadline = Date.now() + this.timeouts.requestMs;
    }
    conn.requestWritten();
  }

  /** Copies the request body; Node has already decoded any chunked framing, so re-frame it. */
  private streamBody(conn: UpstreamConnection): void {
    const req = this.req;
    const socket = conn.socket;
    const chunked = this.fwd.chunked;
    const resume = () => req.resume();
    req.on('data', (chunk: Buffer) => {
      if (this.conn !== conn) return;
      this.deadline = this.deadlines.now + this.timeouts.idleMs;
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
      if (this.conn !== conn) return;
      if (chunked) socket.write('0\r\n\r\n');
      this.requestWritten(conn);
    });
  }

  /**
   * The head is written once the read it came in has been parsed whole (see
   * flush), so a framing error in that same read, such as a bad first chunk,
   * still gets the client a clean 502 instead of a cut response.
   */
  onHead(head: ResponseHead): void {
    this.awaitingHead = false;
    this.deadline = this.deadlines.now + this.timeouts.idleMs;
    this.head = head;
  }

  onBody(chunk: Buffer): void {
    if (!this.conn) return;
    this.deadline = this.deadlines.now + this.timeouts.idleMs;
    if (this.head) (this.held ??= []).push(chunk);
    else this.write(chunk);
  }

  flush(): void {
    if (!this.head || !this.conn) return;
    if (!this.writeHead()) return;
    const held = this.held;
    this.held = null;
    if (held) for (const chunk of held) this.write(chunk);
    // The body is still to come: the client gets the head now (a stream's
    // first sign of life), and a later failure can only be a cut response.
    else this.res.flushHeaders();
  }

  onEnd(last: Buffer | null): void {
    const conn = this.conn;
    // No connection: the answer was already replaced by a 502.
    if (!conn) return this.done();
    // A refused head has become a 502 (abort); a refused write has closed the client.
    if (this.head && !this.writeHead()) return;
    const held = this.held;
    this.held = null;
    if (held) for (const chunk of held) this.write(chunk);
    this.done();
    this.conn = null;
    // The app answered before the whole request body reached it: that
    // connection is mid-request and cannot be reused.
    if (this.bodyPending) conn.destroy();
    if (this.res.destroyed) return;
    try {
      // A small body goes out as one latin1 string: Node then sends head and body
      // in one write instead of a corked writev (byte-exact: latin1 maps 1:1).
      if (last) this.res.end(last.length <= SMALL_BODY ? last.toString('latin1') : last, 'latin1');
      else this.res.end();
    } catch {
      this.res.destroy();
    }
  }

  /** Writes the held head; false (and a 502) when Node refuses it. */
  private writeHead(): boolean {
    const head = this.head!;
    this.head = null;
    const res = this.res;
    if (res.destroyed) return false;
    try {
      // A second guard on framing: Node refuses to send more (or fewer) bytes than the Content-Length it sent.
      res.strictContentLength = true;
      res.writeHead(head.status, head.reason || undefined, head.headers);
      return true;
    } catch {
      this.abort();
      return false;
    }
  }

  private write(chunk: Buffer): void {
    const res = this.res;
    const conn = this.conn;
    if (res.destroyed || !conn) return;
    try {
      if (!res.write(chunk)) {
        const socket = conn.socket;
        socket.pause();
        res.once('drain', () => socket.resume());
      }
    } catch {
      this.abort();
    }
  }

  onFail(conn: UpstreamConnection): void {
    if (conn !== this.conn || this.finished) return;
    this.conn = null;
    // A pooled connection the app had closed while idle: retry once on a new
    // one. Safe: nothing was answered and there is no body that was consumed.
    if (!this.retried && conn.uses > 0 && !conn.parser.started && !this.fwd.hasBody && !this.res.destroyed) {
      this.retried = true;
      try {
        this.send(true);
        return;
      } catch {
        /* answered below */
      }
    }
    this.failed();
  }

  onUpgrade(socket: net.Socket, head: ResponseHead, rest: Buffer | null): void {
    this.done();
    this.conn = null;
    if (this.res.destroyed) {
      socket.destroy();
      return;
    }
    this.upgrade!(socket, head, rest);
  }

  timedOut(): void {
    const conn = this.conn;
    this.conn = null;
    this.finished = true;
    conn?.destroy();
    const res = this.res;
    try {
      if (this.awaitingHead && !res.headersSent && !res.destroyed) sendGatewayTimeout(res, this.app, this.timeouts.requestMs);
      else res.destroy(); // Idle mid-body: both sides are closed.
    } catch {
      res.destroy();
    }
  }

  clientClosed(): void {
    if (this.finished) return;
    this.done();
    const conn = this.conn;
    if (conn) {
      // The client left mid-exchange: stop the app's work and drop the connection.
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

  private done(): void {
    this.finished = true;
    this.deadlines.unwatch(this);
  }

  private failed(): void {
    this.done();
    const res = this.res;
    try {
      if (res.headersSent || res.destroyed) res.destroy();
      else sendBadGateway(res);
    } catch {
      res.destroy();
    }
  }
}
