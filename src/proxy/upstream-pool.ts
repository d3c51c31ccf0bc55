import net from 'node:net';
import { Parsed, ResponseParser, type ResponseHead, type ResponseSink } from './response-parser.js';

const BACKEND_HOST = '127.0.0.1';
/** Idle connections kept per backend port; beyond this they are closed on release. */
const MAX_IDLE_PER_PORT = 256;

/** What an upstream connection reports to the request it is serving. */
export interface UpstreamExchange extends ResponseSink {
  /** The connection broke (or a callback threw) before the whole response arrived. */
  onFail(conn: UpstreamConnection): void;
  /** One read from the app has been parsed: what it delivered may go out to the client now. */
  flush(): void;
  /** The app answered 101: the socket is no longer the pool's; `rest` are the bytes after the head. */
  onUpgrade?(socket: net.Socket, head: ResponseHead, rest: Buffer | null): void;
}

/** One keep-alive connection to a backend; serves one request at a time. */
export class UpstreamConnection {
  readonly parser = new ResponseParser();
  exchange: UpstreamExchange | null = null;
  /** Requests completed on this connection; non-zero means the app may have closed it meanwhile. */
  uses = 0;
  /** The request (and its body) has been fully written. */
  requestDone = false;
  idleSince = 0;
  private idleLimitMs = 0;
  private reusable = true;
  private readonly onDataBound = (buf: Buffer) => this.onData(buf);
  private readonly onEndBound = () => this.onEnd();
  private readonly onCloseBound = () => this.onClose();

  constructor(readonly pool: UpstreamPool, readonly socket: net.Socket) {
    socket.on('data', this.onDataBound);
    socket.on('end', this.onEndBound);
    // 'close' always follows an error; the failure is handled there.
    socket.on('error', noop);
    socket.on('close', this.onCloseBound);
  }

  /** Binds an exchange to this connection before its request is written. */
  begin(exchange: UpstreamExchange, noBody: boolean, upgrade = false): void {
    this.exchange = exchange;
    this.requestDone = false;
    // An upgrade request's connection is never reused, whatever the answer.
    this.reusable = !upgrade;
    this.parser.expect(exchange, noBody, upgrade);
  }

  /** Called by the exchange once its request body has been written in full. */
  requestWritten(): void {
    this.requestDone = true;
    if (this.exchange && this.parser.delivered) this.settle();
  }

  destroy(): void {
    this.exchange = null;
    this.socket.destroy();
  }

  private onData(buf: Buffer): void {
    if (!this.exchange) {
      // The app spoke while idle (say, a timeout notice): not a connection to reuse.
      this.socket.destroy();
      return;
    }
    const ex = this.exchange;
    let r: Parsed;
    try {
      r = this.parser.execute(buf);
      // The exchange may have dropped this connection from one of its callbacks.
      if (this.exchange !== ex) return;
      if (r === Parsed.More) return ex.flush();
    } catch {
      // Whatever an exchange callback threw ends this exchange and connection only.
      this.fail(ex);
      return;
    }
    if (r === Parsed.Upgraded) {
      this.detach();
      ex.onUpgrade!(this.socket, this.parser.upgradeHead!, this.parser.upgradeRest);
      return;
    }
    if (r === Parsed.Error) {
      this.fail(ex);
      return;
    }
    if (this.requestDone) this.settle();
    // Otherwise the app answered before reading the whole body: settle() on requestWritten.
  }

  private fail(ex: UpstreamExchange): void {
    this.exchange = null;
    this.socket.destroy();
    if (!this.parser.delivered) ex.onFail(this);
  }

  /** Hands the socket over to an upgraded (tunnelled) exchange. */
  private detach(): void {
    this.exchange = null;
    this.socket.off('data', this.onDataBound);
    this.socket.off('end', this.onEndBound);
    this.socket.off('close', this.onCloseBound);
    this.pool.forget(this);
  }

  private settle(): void {
    this.exchange = null;
    this.uses++;
    const p = this.parser;
    const hint = p.keepAliveHintMs;
    // Like Node's agent: trust the app's hint less a second; 0 or 1 s means do not reuse.
    const most = this.pool.pools.maxIdleMs();
    this.idleLimitMs = hint >= 0 ? Math.min(most, hint - 1000) : most;
    if (!this.reusable || !p.keepAlive || this.idleLimitMs <= 0 || this.socket.destroyed) this.socket.destroy();
    else this.pool.release(this);
  }

  /** True when an idle connection has outlived its keep-alive window. */
  stale(now: number): boolean {
    return now - this.idleSince >= this.idleLimitMs;
  }

  private onEnd(): void {
    const ex = this.exchange;
    if (ex) {
      this.exchange = null;
      if (this.parser.finish() !== Parsed.Done) ex.onFail(this);
    }
    this.socket.destroy();
  }

  private onClose(): void {
    this.pool.forget(this);
    // Closed without a clean end (reset, error, destroy): whatever was pending failed.
    const ex = this.exchange;
    if (ex) {
      this.exchange = null;
      if (!this.parser.delivered) ex.onFail(this);
    }
  }
}

function noop(): void {}

/** Keep-alive connections to one backend port, reused most-recent first. */
export class UpstreamPool {
  readonly idle: UpstreamConnection[] = [];
  open = 0;

  constructor(readonly port: number, readonly pools: UpstreamPools) {}

  acquire(): UpstreamConnection {
    const now = Date.now();
    let conn: UpstreamConnection | undefined;
    while ((conn = this.idle.pop())) {
      if (!conn.socket.destroyed && !conn.stale(now)) return conn;
      conn.destroy();
    }
    return this.connect();
  }

  /** A fresh connection, never a pooled one (for a retry after a stale one failed). */
  connect(): UpstreamConnection {
    this.open++;
    return new UpstreamConnection(this, net.connect({ port: this.port, host: BACKEND_HOST, noDelay: true }));
  }

  release(conn: UpstreamConnection): void {
    if (conn.socket.destroyed || this.idle.length >= MAX_IDLE_PER_PORT) {
      conn.destroy();
      return;
    }
    conn.idleSince = Date.now();
    this.idle.push(conn);
  }

  forget(conn: UpstreamConnection): void {
    this.open--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.open === 0) this.pools.drop(this);
  }

  /** Closes idle connections past their window; oldest are at the bottom of the stack. */
  sweep(now: number): void {
    while (this.idle.length && this.idle[0].stale(now)) this.idle.shift()!.destroy();
  }
}

/** Upstream pools by backend port; a pool goes away with its last connection. */
export class UpstreamPools {
  private readonly pools = new Map<number, UpstreamPool>();
  private readonly sweeper: NodeJS.Timeout;

  /** `maxIdleMs`: read at each release, so a new --upstream-idle-timeout applies at once. */
  constructor(readonly maxIdleMs: () => number) {
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const p of this.pools.values()) p.sweep(now);
    }, 1000);
    this.sweeper.unref();
  }

  pool(port: number): UpstreamPool {
    let p = this.pools.get(port);
    if (!p) {
      p = new UpstreamPool(port, this);
      this.pools.set(port, p);
    }
    return p;
  }

  drop(pool: UpstreamPool): void {
    if (this.pools.get(pool.port) === pool) this.pools.delete(pool.port);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const p of [...this.pools.values()]) for (const c of [...p.idle]) c.destroy();
  }
}
