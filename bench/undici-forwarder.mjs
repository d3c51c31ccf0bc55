// The proxy's HTTP forwarding done with undici (Pool + dispatch, llhttp in
// WASM) instead of the hand-written parser, for the side-by-side measurement
// in proxy-bench.mjs (issue 12: decide the parser by measurement). It keeps
// the same duties as src/proxy/http-forwarder.ts where undici allows: the same
// X-Forwarded-* request headers (built by the proxy server before this),
// hop-by-hop response headers dropped, 1xx not relayed, request and idle
// timeouts (undici's headersTimeout and bodyTimeout), and the same 502/504
// pages. Passed to startProxy as `forwarder`.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { sendBadGateway, sendGatewayTimeout } = await import(pathToFileURL(path.join(ROOT, 'dist/proxy/error-pages.js')).href);

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

export class UndiciForwarder {
  /** @param {{ requestMs: number, idleMs: number }} timeouts */
  constructor(timeouts) {
    this.timeouts = timeouts;
    this.pools = new Map();
  }

  pool(port) {
    let pool = this.pools.get(port);
    if (!pool) {
      pool = new Pool(`http://127.0.0.1:${port}`, {
        pipelining: 1,
        keepAliveTimeout: 4000,
        headersTimeout: this.timeouts.requestMs,
        bodyTimeout: this.timeouts.idleMs,
        maxHeaderSize: 16 * 1024,
      });
      this.pools.set(port, pool);
    }
    return pool;
  }

  forward(req, res, target, fwd) {
    // undici frames the request body itself and refuses a Transfer-Encoding header.
    const headers = [];
    for (let i = 0; i < fwd.headers.length; i += 2) {
      const name = fwd.headers[i];
      if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') continue;
      headers.push(name, fwd.headers[i + 1]);
    }
    const handler = new Handler(res, target.app, this.timeouts.requestMs);
    try {
      this.pool(target.port).dispatch(
        { path: fwd.path, method: req.method, headers, body: fwd.hasBody ? req : null, idempotent: false },
        handler,
      );
    } catch {
      handler.fail(null);
    }
    return handler;
  }

  close() {
    for (const p of this.pools.values()) p.destroy().catch(() => {});
    this.pools.clear();
  }
}

class Handler {
  constructor(res, app, requestMs) {
    this.res = res;
    this.app = app;
    this.requestMs = requestMs;
    this.controller = null;
    this.head = null;
    this.ended = false;
  }

  onRequestStart(controller) {
    this.controller = controller;
  }

  onResponseStart(controller, status, _headers, reason) {
    if (status < 200) return;
    const raw = controller.rawHeaders;
    const out = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      out.push(name, raw[i + 1].toString('latin1'));
    }
    // Held until the first body bytes or the end, so an error right after the
    // head still gets the client a 502 (as the hand-written forwarder does).
    this.head = { status, reason, headers: out };
    this.controller = controller;
  }

  writeHead() {
    const head = this.head;
    this.head = null;
    try {
      this.res.strictContentLength = true;
      this.res.writeHead(head.status, head.reason || undefined, head.headers);
      return true;
    } catch {
      this.controller.abort(new Error('response head refused'));
      return false;
    }
  }

  onResponseData(controller, chunk) {
    if (this.head && !this.writeHead()) return;
    try {
      if (!this.res.write(chunk)) {
        controller.pause();
        this.res.once('drain', () => controller.resume());
      }
    } catch {
      controller.abort(new Error('response body refused'));
    }
  }

  onResponseEnd() {
    if (this.head && !this.writeHead()) return;
    this.ended = true;
    try {
      this.res.end();
    } catch {
      this.res.destroy();
    }
  }

  onResponseError(_controller, err) {
    this.fail(err);
  }

  fail(err) {
    this.ended = true;
    const res = this.res;
    try {
      if (res.headersSent || res.destroyed) res.destroy();
      else if (err?.code === 'UND_ERR_HEADERS_TIMEOUT') sendGatewayTimeout(res, this.app, this.requestMs);
      else sendBadGateway(res);
    } catch {
      res.destroy();
    }
  }

  clientClosed() {
    if (!this.ended) this.controller?.abort(new Error('the client left'));
  }
}
