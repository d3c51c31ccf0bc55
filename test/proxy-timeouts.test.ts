// A slow or hung app holds nothing beyond --request-timeout / --idle-timeout,
// and other apps serve meanwhile.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../src/proxy/proxy-server.js';
import type { AccessEntry } from '../src/proxy/types.js';
import { parseServerOptions } from '../src/server/server-options.js';
import { fixedApp, proxyWithApps, rawApp, request, until, type ProxyWithApps, type RawApp } from './support/proxy-apps.js';

let px: ProxyWithApps;
let proxy: RunningProxy;
const access: AccessEntry[] = [];

beforeAll(async () => {
  px = await proxyWithApps({ requestTimeoutMs: 2000, idleTimeoutMs: 1000, onAccess: (e) => access.push(e) });
  proxy = px.proxy;
});
afterAll(() => px.close());

const serve = (name: string, app: RawApp) => px.serve(name, app);

describe('--request-timeout', () => {
  it('answers 504 naming the app and the timeout when a hung app sends no head, logs it and closes the app connection', async () => {
    const hung = await serve('hung', await rawApp(() => {}));
    access.length = 0;
    const t0 = performance.now();
    const r = await request(proxy.port, 'hung.test', '/waiting');
    const ms = performance.now() - t0;
    expect(r.status).toBe(504);
    // Swept every 100 ms against the clock of the last sweep: up to one tick early.
    expect(ms).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(3000);
    expect(r.body).toBe("App 'hung' sent no response within 2 s (the server's --request-timeout).\n");
    expect(r.body.trim().split('\n')).toHaveLength(1);
    expect(await until(() => hung.closed() === 1)).toBe(true);
    await until(() => access.length > 0);
    expect(access[0]).toMatchObject({ app: 'hung', path: '/waiting', status: 504, targetPort: hung.port });
  });

  it('six hung requests at once do not slow another app, and each gets its 504', async () => {
    await serve('stuck', await rawApp(() => {}));
    await serve('quick', await fixedApp('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nquick'));
    const t0 = performance.now();
    const hung = Array.from({ length: 6 }, () => request(proxy.port, 'stuck.test'));
    await new Promise((r) => setTimeout(r, 100));
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      expect((await request(proxy.port, 'quick.test')).body).toBe('quick');
      latencies.push(performance.now() - s);
    }
    expect(Math.max(...latencies)).toBeLessThan(500);
    const answers = await Promise.all(hung);
    expect(answers.map((a) => a.status)).toEqual([504, 504, 504, 504, 504, 504]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('also bounds an upgrade the app never answers', async () => {
    await serve('wshung', await rawApp(() => {}));
    const socket = net.connect(proxy.port, '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.write('GET /ws HTTP/1.1\r\nHost: wshung.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    const t0 = performance.now();
    await new Promise((r) => socket.on('close', r));
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(got).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/);
  });
});

describe('--idle-timeout', () => {
  it('closes both sides when a response body stops streaming', async () => {
    const stalls = await serve('stalls', await rawApp((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart')));
    const t0 = performance.now();
    await expect(request(proxy.port, 'stalls.test')).rejects.toThrow();
    const ms = performance.now() - t0;
    // Deadlines are swept every 100 ms against a clock read at the last sweep, so they may
    // fire up to one tick early.
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(2000);
    expect(await until(() => stalls.closed() === 1)).toBe(true);
  });

  it('lets a body that keeps moving stream for longer than the idle timeout', async () => {
    await serve('drip', await rawApp((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      let n = 0;
      const t = setInterval(() => {
        if (++n <= 6) s.write('5\r\ndrip.\r\n');
        else {
          clearInterval(t);
          s.write('0\r\n\r\n');
        }
      }, 300);
      s.on('close', () => clearInterval(t));
    }));
    const r = await request(proxy.port, 'drip.test');
    expect(r.body).toBe('drip.'.repeat(6));
  });

  it('closes both sides when an app stops reading a request body', async () => {
    // It reads again later, only so that it notices its connection was closed.
    const deaf = await serve('deaf', await rawApp((s) => {
      s.pause();
      setTimeout(() => s.resume(), 2500);
    }));
    const body = 'x'.repeat(8 * 1024 * 1024);
    const t0 = performance.now();
    await expect(request(proxy.port, 'deaf.test', '/', { method: 'POST', body })).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(await until(() => deaf.closed() === 1, 5000)).toBe(true);
  });
});

describe('--upstream-idle-timeout', () => {
  it("keeps an idle app connection past Node's 4 s when the app allows it, up to the timeout, which configure() changes at once", async () => {
    // An app that keeps connections 20 s (hint 20 s: the proxy keeps them 19 s at most) and answers with the port it was reached from.
    const server = http.createServer((q, s) => s.end(String(q.socket.remotePort)));
    server.keepAliveTimeout = 20_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      proxy.routes.setHosts('lasting', ['lasting.test']);
      proxy.routes.setBackends('lasting', [port]);
      const first = (await request(proxy.port, 'lasting.test')).body;
      await new Promise((r) => setTimeout(r, 5000));
      // The default 30 s: the same connection after 5 s idle.
      expect((await request(proxy.port, 'lasting.test')).body).toBe(first);
      proxy.configure({ baseDomain: 'localhost', requestTimeoutMs: 2000, idleTimeoutMs: 1000, upstreamIdleTimeoutMs: 1000 });
      const second = (await request(proxy.port, 'lasting.test')).body;
      await new Promise((r) => setTimeout(r, 2200));
      expect((await request(proxy.port, 'lasting.test')).body).not.toBe(second);
    } finally {
      proxy.configure({ baseDomain: 'localhost', requestTimeoutMs: 2000, idleTimeoutMs: 1000, upstreamIdleTimeoutMs: 30_000 });
      proxy.routes.removeApp('lasting');
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('server options', () => {
  it('takes --request-timeout and --idle-timeout in seconds, 30 and 60 by default, and refuses nonsense', () => {
    const defaults = parseServerOptions([], {});
    expect([defaults.requestTimeoutMs, defaults.idleTimeoutMs]).toEqual([30_000, 60_000]);
    const set = parseServerOptions(['--request-timeout', '2', '--idle-timeout=0.5'], {});
    expect([set.requestTimeoutMs, set.idleTimeoutMs]).toEqual([2000, 500]);
    expect(parseServerOptions([], { PLATFORMX_REQUEST_TIMEOUT: '5' }).requestTimeoutMs).toBe(5000);
    expect(() => parseServerOptions(['--request-timeout', '0'], {})).toThrow(/--request-timeout must be a number of seconds, not '0'/);
    expect(() => parseServerOptions(['--idle-timeout', 'soon'], {})).toThrow(/--idle-timeout must be a number of seconds/);
    expect(defaults.upstreamIdleTimeoutMs).toBe(30_000);
    expect(parseServerOptions(['--upstream-idle-timeout', '90'], {}).upstreamIdleTimeoutMs).toBe(90_000);
    expect(() => parseServerOptions(['--upstream-idle-timeout', '-1'], {})).toThrow(/--upstream-idle-timeout must be a number of seconds/);
  });
});
