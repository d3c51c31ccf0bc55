import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startProxy } from '../src/proxy/proxy-server.js';
import type { AccessEntry, RouteControl } from '../src/proxy/types.js';
import { closedPort, rawApp, request, type Reply } from './support/proxy-apps.js';

// Real backends on loopback: each answers its own name and echoes what it was sent.
interface Backend {
  name: string;
  port: number;
  server: http.Server;
  /** Releases requests to /hold until called. */
  release(): void;
  /** How many /slow requests it has answered. */
  slowAnswered(): number;
  close(): Promise<void>;
}

async function backend(name: string): Promise<Backend> {
  let held: (() => void)[] = [];
  let slowAnswered = 0;
  const server = http.createServer((req, res) => {
    const reply = () =>
      res.end(JSON.stringify({ name, url: req.url, method: req.method, headers: req.headers }));
    if (req.url?.startsWith('/slow')) {
      setTimeout(() => {
        slowAnswered++;
        reply();
      }, 300);
    }
    else if (req.url?.startsWith('/hold')) held.push(reply);
    else if (req.method === 'POST') {
      let body = '';
      // /paused-read lets the upload pile up in socket buffers first, so the proxy meets backpressure.
      if (req.url === '/paused-read') {
        req.pause();
        setTimeout(() => req.resume(), 200);
      }
      req.on('data', (c) => (body += c));
      req.on('end', () => res.end(`${name} got ${body}`));
    } else reply();
  });
  // A raw echo after a hand-written 101: enough to show the upgraded stream is piped both ways.
  server.on('upgrade', (req, socket: net.Socket, head) => {
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `X-Backend: ${name}\r\nX-Seen-Forwarded-For: ${req.headers['x-forwarded-for']}\r\n\r\n`,
    );
    if (head.length) socket.write(head);
    socket.on('data', (d) => socket.write(`${name}:${d}`));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    server,
    slowAnswered: () => slowAnswered,
    release() {
      const h = held;
      held = [];
      for (const f of h) f();
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

const json = (r: Reply) => JSON.parse(r.body) as { name: string; url: string; headers: Record<string, string> };

/** Opens a raw upgrade through the proxy; resolves with the response head and the socket. */
function upgrade(port: number, host: string, path = '/ws'): Promise<{ head: string; socket: net.Socket; rest: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n',
    );
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ head: buf.slice(0, end), socket, rest: buf.slice(end + 4) });
    };
    socket.on('data', onData);
  });
}

function nextData(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => socket.once('data', (d) => resolve(d.toString())));
}

/**
 * Keep-alive GETs of host from `workers` loops until stop(); each answer is
 * noted with the time its request started (performance.now()) and the backend's name.
 */
function traffic(host: string, workers: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const failures: string[] = [];
  const answers: { at: number; name: string }[] = [];
  let running = true;
  const loop = async () => {
    while (running) {
      const at = performance.now();
      try {
        const r = await request(proxy.port, host, '/', { agent });
        if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        else answers.push({ at, name: json(r).name as string });
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const loops = Array.from({ length: workers }, loop);
  return {
    failures,
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

let proxy: Awaited<ReturnType<typeof startProxy>>;
let routes: RouteControl;
const access: AccessEntry[] = [];
const backends: Backend[] = [];
async function up(name: string) {
  const b = await backend(name);
  backends.push(b);
  return b;
}

beforeAll(async () => {
  proxy = await startProxy({ host: '127.0.0.1', port: 0, onAccess: (e) => access.push(e) });
  routes = proxy.routes;
});
afterAll(async () => {
  await proxy.close();
  await Promise.all(backends.map((b) => b.close()));
});
afterEach(() => {
  for (const b of backends) b.release();
});

describe('routing by Host header', () => {
  it('routes each host, in any case and with any port, to its own app', async () => {
    const a = await up('alpha');
    const b = await up('beta');
    routes.setHosts('alpha', ['alpha.example.com', 'www.alpha.test']);
    routes.setHosts('beta', ['beta.example.com']);
    routes.setBackends('alpha', [a.port]);
    routes.setBackends('beta', [b.port]);

    expect(json(await request(proxy.port, 'alpha.example.com', '/x?y=1')).name).toBe('alpha');
    expect(json(await request(proxy.port, 'ALPHA.Example.COM:8080')).name).toBe('alpha');
    expect(json(await request(proxy.port, 'www.alpha.test:80')).name).toBe('alpha');
    const beta = json(await request(proxy.port, 'Beta.Example.com', '/path/here?q=2'));
    expect(beta.name).toBe('beta');
    expect(beta.url).toBe('/path/here?q=2');

    // setHosts replaces: the old name stops routing, the new one starts.
    routes.setHosts('alpha', ['alpha2.example.com']);
    expect((await request(proxy.port, 'www.alpha.test')).status).toBe(404);
    expect(json(await request(proxy.port, 'alpha2.example.com')).name).toBe('alpha');

    routes.removeApp('beta');
    expect((await request(proxy.port, 'beta.example.com')).status).toBe(404);
  });

  it('forwards request bodies and sets X-Forwarded-* headers the client cannot forge', async () => {
    const a = await up('fwd');
    routes.setHosts('fwd', ['fwd.example.com']);
    routes.setBackends('fwd', [a.port]);
    const r = json(
      await request(proxy.port, 'Fwd.Example.com:8000', '/', {
        headers: {
          'X-Forwarded-For': '203.0.113.7',
          'X-Forwarded-Proto': 'https',
          'X-Forwarded-Host': 'evil.example',
          Connection: 'x-private',
          'X-Private': 'hop-by-hop',
          'X-Custom': 'kept',
        },
      }),
    );
    expect(r.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(r.headers['x-forwarded-proto']).toBe('http');
    expect(r.headers['x-forwarded-host']).toBe('Fwd.Example.com:8000');
    expect(r.headers.host).toBe('Fwd.Example.com:8000');
    expect(r.headers['x-custom']).toBe('kept');
    expect(r.headers['x-private']).toBeUndefined();

    const post = await request(proxy.port, 'fwd.example.com', '/', { method: 'POST', body: 'payload' });
    expect(post.body).toBe('fwd got payload');
  });

  it('answers 404 naming the host as sent for an unknown host, and pong on /_ping_', async () => {
    const r = await request(proxy.port, 'Nobody.Example:81', '/anything');
    expect(r.status).toBe(404);
    expect(r.body).toBe("host 'Nobody.Example' not found on this server.");
    expect(r.headers['content-type']).toMatch(/^text\/plain/);

    const ping = await request(proxy.port, 'lb-check.internal', '/_ping_');
    expect(ping.status).toBe(200);
    expect(ping.body).toBe('pong');

    // A known app's /_ping_ is the app's own path.
    const a = await up('pinged');
    routes.setHosts('pinged', ['pinged.example.com']);
    routes.setBackends('pinged', [a.port]);
    expect(json(await request(proxy.port, 'pinged.example.com', '/_ping_')).url).toBe('/_ping_');
  });

  it('refuses malformed requests without falling over', async () => {
    const rawExchange = (text: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(proxy.port, '127.0.0.1');
        let got = '';
        socket.on('data', (d) => (got += d.toString('latin1')));
        socket.on('close', () => resolve(got));
        socket.on('error', () => {});
        socket.write(text);
      });
    expect(await rawExchange('NONSENSE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    // Content-Length and Transfer-Encoding together is how request smuggling starts.
    expect(
      await rawExchange('POST / HTTP/1.1\r\nHost: fwd.example.com\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
    ).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawExchange(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    expect((await request(proxy.port, 'nope.example')).status).toBe(404);
  });

  it('answers 503 at once for an app without a process and 502 for a dead one', async () => {
    routes.setHosts('idle', ['idle.example.com']);
    routes.setBackends('idle', []);
    const idle = await request(proxy.port, 'idle.example.com');
    expect(idle.status).toBe(503);
    expect(idle.body).toContain('Application error');

    routes.setBackends('idle', [await closedPort()]);
    const dead = await request(proxy.port, 'idle.example.com');
    expect(dead.status).toBe(502);
    expect(dead.body).toContain('Bad gateway');
    // The proxy is still fine afterwards.
    expect((await request(proxy.port, 'nope.example')).status).toBe(404);
  });

  it('balances round-robin over several web processes', async () => {
    const a = await up('rr-a');
    const b = await up('rr-b');
    routes.setHosts('rr', ['rr.example.com']);
    routes.setBackends('rr', [a.port, b.port]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push(json(await request(proxy.port, 'rr.example.com', '/', { agent })).name);
    agent.destroy();
    // One client connection, yet requests alternate: the backend is picked per request.
    expect(names).toEqual(['rr-a', 'rr-b', 'rr-a', 'rr-b', 'rr-a', 'rr-b']);
  });

  it('logs one access entry per request', async () => {
    const a = await up('logged');
    routes.setHosts('logged', ['logged.example.com']);
    routes.setBackends('logged', [a.port]);
    access.length = 0;
    await request(proxy.port, 'Logged.example.com:9', '/some/path?x=1');
    await request(proxy.port, 'ghost.example.com', '/');
    await new Promise((r) => setTimeout(r, 20));
    expect(access).toHaveLength(2);
    expect(access[0]).toMatchObject({
      app: 'logged', host: 'Logged.example.com:9', method: 'GET', path: '/some/path?x=1',
      sourceIp: '127.0.0.1', targetPort: a.port, status: 200,
    });
    expect(access[0].ms).toBeGreaterThanOrEqual(0);
    expect(access[1]).toMatchObject({ app: null, host: 'ghost.example.com', status: 404, targetPort: null });
  });
});

describe('WebSockets', () => {
  it('proxies an upgrade both ways and counts the open socket for drain', async () => {
    const a = await up('ws');
    routes.setHosts('ws', ['ws.example.com']);
    routes.setBackends('ws', [a.port]);
    const { head, socket, rest } = await upgrade(proxy.port, 'WS.example.com');
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    expect(head.toLowerCase()).toContain('x-backend: ws');
    expect(head.toLowerCase()).toContain('x-seen-forwarded-for: 10.9.9.9, 127.0.0.1');
    expect(rest).toBe('');
    socket.write('hello');
    expect(await nextData(socket)).toBe('ws:hello');

    routes.setBackends('ws', []);
    expect(await routes.drain(a.port, 50)).toBe(1);
    const drained = routes.drain(a.port, 5000);
    socket.end();
    expect(await drained).toBe(0);
  });

  it('answers upgrades for unknown hosts, idle apps, refusing and dead backends', async () => {
    expect((await upgrade(proxy.port, 'nowhere.example')).head).toMatch(/^HTTP\/1\.1 404/);
    routes.setHosts('wsidle', ['wsidle.example.com']);
    expect((await upgrade(proxy.port, 'wsidle.example.com')).head).toMatch(/^HTTP\/1\.1 503/);
    routes.setBackends('wsidle', [await closedPort()]);
    expect((await upgrade(proxy.port, 'wsidle.example.com')).head).toMatch(/^HTTP\/1\.1 502/);
    const a = await up('wsrefuse');
    routes.setBackends('wsidle', [a.port]);
    expect((await upgrade(proxy.port, 'wsidle.example.com', '/refuse')).head).toMatch(/^HTTP\/1\.1 403/);
  });
});

describe('switching backends', () => {
  it('loses no request under keep-alive load, and drain waits for a slow request on the old backend', async () => {
    const oldB = await up('old');
    const newB = await up('new');
    routes.setHosts('live', ['live.example.com']);
    routes.setBackends('live', [oldB.port]);
    const load = traffic('live.example.com', 6);
    await new Promise((r) => setTimeout(r, 150));

    const slow = request(proxy.port, 'live.example.com', '/slow', { agent: false });
    await new Promise((r) => setTimeout(r, 50));
    routes.setBackends('live', [newB.port]);
    const switchedAt = performance.now();
    expect(oldB.slowAnswered()).toBe(0);
    const left = await routes.drain(oldB.port, 5000);
    expect(left).toBe(0);
    // drain resolved only once the old backend had answered the slow request.
    expect(oldB.slowAnswered()).toBe(1);
    expect(json(await slow).name).toBe('old');
    // Retire the old process as Maestro would, while traffic keeps flowing.
    await oldB.close();
    await new Promise((r) => setTimeout(r, 200));
    await load.stop();

    expect(load.failures).toEqual([]);
    expect(load.answers.filter((a) => a.name === 'old').length).toBeGreaterThan(0);
    expect(load.answers.filter((a) => a.name === 'new').length).toBeGreaterThan(0);
    expect(load.answers.filter((a) => a.at >= switchedAt && a.name === 'old')).toEqual([]);
  });

  it('moves a busy app to new backends gradually (slow start), each request to one of them; a quiet app at once', async () => {
    const oldB = await up('ramp-old');
    const newB = await up('ramp-new');
    routes.setHosts('ramp', ['ramp.example.com']);
    routes.setBackends('ramp', [oldB.port]);
    const load = traffic('ramp.example.com', 6);
    // Long enough for the proxy to have counted a busy second.
    await new Promise((r) => setTimeout(r, 1300));
    const shiftAt = performance.now();
    const shift = await routes.shiftBackends('ramp', [newB.port], 1000);
    expect(shift.gradual).toBe(true);
    await shift.done;
    const shiftMs = performance.now() - shiftAt;
    expect(await routes.drain(oldB.port, 5000)).toBe(0);
    await oldB.close();
    await new Promise((r) => setTimeout(r, 200));
    await load.stop();

    expect(load.failures).toEqual([]);
    expect(shiftMs).toBeGreaterThanOrEqual(990);
    // Share of answers from the new backend among requests started in [from, to) ms after the shift began.
    const share = (from: number, to: number) => {
      const names = load.answers.filter((a) => a.at - shiftAt >= from && a.at - shiftAt < to).map((a) => a.name);
      expect(names.length).toBeGreaterThan(20);
      return names.filter((n) => n === 'ramp-new').length / names.length;
    };
    expect(share(-Infinity, 0)).toBe(0);
    expect(share(0, 250)).toBeLessThan(0.4);
    expect(share(750, 1000)).toBeGreaterThan(0.6);
    expect(share(shiftMs + 5, Infinity)).toBe(1);

    // Nobody is asking: the new backend takes over at once.
    const quietOld = await up('quiet-old');
    const quietNew = await up('quiet-new');
    routes.setHosts('quiet', ['quiet.example.com']);
    routes.setBackends('quiet', [quietOld.port]);
    const t0 = performance.now();
    const quiet = await routes.shiftBackends('quiet', [quietNew.port], 5000);
    expect(quiet.gradual).toBe(false);
    await quiet.done;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(json(await request(proxy.port, 'quiet.example.com', '/')).name).toBe('quiet-new');
  });

  it('drain resolves at the timeout with the number of requests still open', async () => {
    const a = await up('holder');
    routes.setHosts('holder', ['holder.example.com']);
    routes.setBackends('holder', [a.port]);
    const held = [request(proxy.port, 'holder.example.com', '/hold'), request(proxy.port, 'holder.example.com', '/hold')];
    await new Promise((r) => setTimeout(r, 50));
    routes.setBackends('holder', []);
    expect(await routes.drain(a.port, 50)).toBe(2);
    a.release();
    await Promise.all(held);
    expect(await routes.drain(a.port, 50)).toBe(0);
  });

  it('survives a client that leaves mid-request, and stops counting it', async () => {
    const a = await up('leaver');
    routes.setHosts('leaver', ['leaver.example.com']);
    routes.setBackends('leaver', [a.port]);
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /hold HTTP/1.1\r\nHost: leaver.example.com\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect(await routes.drain(a.port, 2000)).toBe(0);
    expect(json(await request(proxy.port, 'leaver.example.com')).name).toBe('leaver');
  });
});

describe('relaying what apps answer', () => {
  const raws: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(raws.map((r) => r.close()));
  });
  async function raw(name: string, handler: (socket: net.Socket, head: string, nth: number) => void) {
    const r = await rawApp(handler);
    raws.push(r);
    routes.setHosts(name, [`${name}.example.com`]);
    routes.setBackends(name, [r.port]);
    return r;
  }

  it('relays chunked, streamed, large, HEAD, 204 and 304 answers over one kept-alive app connection', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 'x').toString();
    const server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        res.write('one,');
        res.write('two,');
        res.end('three');
      } else if (req.url === '/stream') {
        res.write('first\n');
        setTimeout(() => res.end('second\n'), 150);
      } else if (req.url === '/big') {
        res.end(big);
      } else if (req.url === '/nocontent') {
        res.writeHead(204).end();
      } else if (req.url === '/cached') {
        res.writeHead(304, { etag: '"v1"' }).end();
      } else {
        res.writeHead(200, { 'content-length': '1234', 'x-kind': 'head' });
        res.end(req.method === 'HEAD' ? undefined : 'y'.repeat(1234));
      }
    });
    const sockets = new Set<net.Socket>();
    let connections = 0;
    server.on('connection', (s) => {
      connections++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    raws.push({ close: () => new Promise<void>((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }) });
    routes.setHosts('relay', ['relay.example.com']);
    routes.setBackends('relay', [(server.address() as AddressInfo).port]);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await request(proxy.port, 'relay.example.com', '/chunked', { agent })).body).toBe('one,two,three');
    const bigReply = await request(proxy.port, 'relay.example.com', '/big', { agent });
    expect(bigReply.body.length).toBe(big.length);
    expect(bigReply.body === big).toBe(true);
    const head = await request(proxy.port, 'relay.example.com', '/', { agent, method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1234');
    expect(head.body).toBe('');
    expect((await request(proxy.port, 'relay.example.com', '/nocontent', { agent })).status).toBe(204);
    const cached = await request(proxy.port, 'relay.example.com', '/cached', { agent });
    expect(cached.status).toBe(304);
    expect(cached.headers.etag).toBe('"v1"');
    expect((await request(proxy.port, 'relay.example.com', '/', { agent })).body).toBe('y'.repeat(1234));
    // Every answer above was framed right: the app saw one connection for all of them.
    expect(connections).toBe(1);

    // A streamed answer reaches the client piece by piece, not when it ends.
    const firstPiece = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: proxy.port, path: '/stream', headers: { host: 'relay.example.com' }, agent: false }, (res) => {
        res.once('data', (d) => resolve(d.toString()));
        res.resume();
      }).on('error', reject);
    });
    expect(firstPiece).toBe('first\n');
    agent.destroy();
  });

  it('streams a chunked request body to the app', async () => {
    const a = await up('upload');
    routes.setHosts('upload', ['upload.example.com']);
    routes.setBackends('upload', [a.port]);
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/', agent: false, headers: { host: 'upload.example.com', 'transfer-encoding': 'chunked' } },
        (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        },
      );
      req.on('error', reject);
      req.write('part1-');
      setTimeout(() => req.end('part2'), 30);
    });
    expect(body).toBe('upload got part1-part2');

    // A body far larger than socket buffers arrives whole, chunked or sized.
    const big = 'z'.repeat(4 * 1024 * 1024);
    for (const headers of [{ 'transfer-encoding': 'chunked' }, { 'content-length': String(big.length) }]) {
      const reply = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/paused-read', agent: false, headers: { host: 'upload.example.com', ...headers } },
          (res) => {
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(b));
          },
        );
        req.on('error', reject);
        for (let i = 0; i < big.length; i += 64 * 1024) req.write(big.slice(i, i + 64 * 1024));
        req.end();
      });
      expect(reply.slice(0, 300)).toBe(`upload got ${big}`.slice(0, 300));
      expect(reply.length).toBe('upload got '.length + big.length);
      expect(reply === `upload got ${big}`).toBe(true);
    }
  });

  it('relays an answer the app sends before reading the request body, then carries on', async () => {
    const early = await raw('early', (s, head) => {
      if (head.startsWith('POST')) s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const reply = await request(proxy.port, 'early.example.com', '/', { method: 'POST', body: 'x'.repeat(256 * 1024) }).catch((e: Error) => e);
    // The client either reads the 413 or, if its upload was cut first, sees the connection end; never a hang.
    if (!(reply instanceof Error)) {
      expect(reply.status).toBe(413);
      expect(reply.body).toBe('too big!');
    }
    expect((await request(proxy.port, 'early.example.com')).body).toBe('ok');
    expect(early.connections()).toBe(2);
  });

  it('relays HTTP/1.0 close-delimited answers, trailers, 103 hints and Connection: close', async () => {
    await raw('old10', (s) => s.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end'));
    expect((await request(proxy.port, 'old10.example.com')).body).toBe('until the end');
    expect((await request(proxy.port, 'old10.example.com')).body).toBe('until the end');

    await raw('trailers', (s) =>
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n'),
    );
    expect((await request(proxy.port, 'trailers.example.com')).body).toBe('hello world');

    await raw('hints', (s) =>
      s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\nok'),
    );
    const hinted = await request(proxy.port, 'hints.example.com');
    expect(hinted.status).toBe(201);
    expect(hinted.body).toBe('ok');
    expect(hinted.headers['x-secret']).toBeUndefined();

    const closing = await raw('closer', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye'));
    expect((await request(proxy.port, 'closer.example.com')).body).toBe('bye');
    expect((await request(proxy.port, 'closer.example.com')).body).toBe('bye');
    // The app said close: the second request needed a second connection.
    expect(closing.connections()).toBe(2);
  });

  it('retries a bodiless request once when a kept-alive app connection turns out closed', async () => {
    // The app drops each connection on its second request, as a server whose
    // keep-alive timeout fires just as the request arrives would.
    const flaky = await raw('flaky', (s, _head, nth) => {
      if (nth > 0) s.destroy();
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    expect((await request(proxy.port, 'flaky.example.com')).body).toBe('ok');
    const again = await request(proxy.port, 'flaky.example.com');
    expect(again.status).toBe(200);
    expect(again.body).toBe('ok');
    expect(flaky.connections()).toBe(2);
    // A request with a body is not replayed: its answer is a 502.
    await request(proxy.port, 'flaky.example.com');
    const post = await request(proxy.port, 'flaky.example.com', '/', { method: 'POST', body: 'once' });
    expect(post.status).toBe(502);
  });

  it('answers 502 for a garbled answer and breaks the response of an app that dies mid-body', async () => {
    await raw('garbled', (s) => s.write('this is not http\r\n\r\n'));
    expect((await request(proxy.port, 'garbled.example.com')).status).toBe(502);

    await raw('dies', (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
      setTimeout(() => s.destroy(), 20);
    });
    await expect(request(proxy.port, 'dies.example.com')).rejects.toThrow();
    // The proxy carries on.
    expect((await request(proxy.port, 'garbled.example.com')).status).toBe(502);
    expect((await request(proxy.port, 'fwd.example.com')).status).toBe(200);
  });
});
