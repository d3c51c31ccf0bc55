// Apps and clients for proxy tests: raw `net` apps that write whatever bytes
// a test likes (every byte an app sends is hostile input), Node's own strict
// http client, and a raw client connection for pipelined requests.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy-server.js';
import type { ProxyOptions } from '../../src/proxy/types.js';

export interface RawApp {
  port: number;
  /** Connections the proxy opened to this app so far. */
  connections(): number;
  /** Connections the app has seen closed (by either side). */
  closed(): number;
  close(): Promise<void>;
}

/**
 * A hand-written HTTP app: handler gets each request head (bodies are not
 * read) and its index on the connection, and writes whatever bytes it likes.
 */
export async function rawApp(handler: (socket: net.Socket, head: string, nth: number) => void): Promise<RawApp> {
  let connections = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
    socket.on('error', () => {});
    let buf = '';
    let nth = 0;
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        handler(socket, head, nth++);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    closed: () => closed,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A raw app that answers every request with the same bytes and keeps the connection open. */
export function fixedApp(bytes: string): Promise<RawApp> {
  return rawApp((s) => s.write(bytes, 'latin1'));
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One request with Node's http client (llhttp, strict); rejects on a malformed or cut answer. */
export function request(
  port: number, host: string, path = '/',
  opts: { agent?: http.Agent | false; headers?: Record<string, string>; method?: string; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, headers: { host, ...opts.headers } },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Writes `text` on one raw connection to port and collects what comes back
 * until the server closes, `responses` complete responses have arrived, or
 * nothing arrives for quietMs.
 */
export function rawExchange(port: number, text: string, responses = Infinity, quietMs = 400): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    let timer: NodeJS.Timeout;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: got, closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), quietMs);
    };
    socket.on('data', (d) => {
      got += d.toString('latin1');
      arm();
      if (responses !== Infinity && complete(got) >= responses) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
    socket.write(text, 'latin1');
    arm();
  });
}

/** How many whole responses text holds so far (0 while it cannot be read yet). */
function complete(text: string): number {
  try {
    return splitResponses(text).responses.length;
  } catch {
    return 0;
  }
}

export interface SplitResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * Splits what the proxy sent on one connection into responses, reading each
 * body by its Content-Length or chunked framing (the only two the proxy's
 * Node server uses on keep-alive). Throws on anything else, so a test cannot
 * pass on a stream it misread.
 */
export function splitResponses(text: string, headRequests = 0): { responses: SplitResponse[]; rest: string } {
  const responses: SplitResponse[] = [];
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const head = text.slice(pos, end);
    const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
    if (!m) throw new Error(`not a response head at ${pos}: ${JSON.stringify(text.slice(pos, pos + 80))}`);
    const status = Number(m[1]);
    let at = end + 4;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
    let body = '';
    if (responses.length < headRequests || status === 204 || status === 304) {
      // No body.
    } else if (length && !chunked) {
      body = text.slice(at, at + Number(length[1]));
      if (body.length < Number(length[1])) throw new Error(`response ${responses.length + 1} cut short`);
      at += body.length;
    } else if (chunked && !length) {
      for (;;) {
        const eol = text.indexOf('\r\n', at);
        if (eol < 0) throw new Error('chunked body cut short');
        const size = parseInt(text.slice(at, eol), 16);
        if (!/^[0-9a-f]+$/i.test(text.slice(at, eol))) throw new Error(`bad chunk size line ${JSON.stringify(text.slice(at, eol))}`);
        at = eol + 2;
        if (size === 0) {
          if (text.slice(at, at + 2) !== '\r\n') throw new Error('trailers where none were expected');
          at += 2;
          break;
        }
        body += text.slice(at, at + size);
        if (text.slice(at + size, at + size + 2) !== '\r\n') throw new Error('chunk not followed by CRLF');
        at += size + 2;
      }
    } else {
      throw new Error(`response ${responses.length + 1} has no usable framing: ${JSON.stringify(head)}`);
    }
    responses.push({ status, head, body });
    pos = at;
  }
  return { responses, rest: text.slice(pos) };
}

export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface ProxyWithApps {
  proxy: RunningProxy;
  /** Routes `name.test` to app; the app is closed with the proxy. */
  serve(name: string, app: RawApp): RawApp;
  close(): Promise<void>;
}

/** The real proxy on a free loopback port, for raw apps. */
export async function proxyWithApps(opts: Omit<ProxyOptions, 'host' | 'port'> = {}): Promise<ProxyWithApps> {
  const proxy = await startProxy({ host: '127.0.0.1', port: 0, ...opts });
  const apps: RawApp[] = [];
  return {
    proxy,
    serve(name, app) {
      apps.push(app);
      proxy.routes.setHosts(name, [`${name}.test`]);
      proxy.routes.setBackends(name, [app.port]);
      return app;
    },
    async close() {
      await proxy.close();
      await Promise.all(apps.map((a) => a.close()));
    },
  };
}

/** Polls cond every 10 ms until it holds or ms pass; returns its last value. */
export async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}
