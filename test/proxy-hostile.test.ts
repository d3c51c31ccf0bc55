// Every byte an app sends is hostile input: each case here is a raw `net` app
// behind the real proxy, read by Node's own strict http client or by a raw
// client connection that sends several requests in a row.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../src/proxy/proxy-server.js';
import {
  fixedApp, proxyWithApps, rawApp, rawExchange, request, splitResponses, until, type ProxyWithApps, type RawApp,
} from './support/proxy-apps.js';

const GOOD = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood';
const EVIL = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil';

let px: ProxyWithApps;
let proxy: RunningProxy;
let appCount = 0;

beforeAll(async () => {
  px = await proxyWithApps({ baseDomain: 'platform.test' });
  proxy = px.proxy;
  serve('good', await fixedApp(GOOD));
});
afterAll(() => px.close());

const serve = (name: string, app: RawApp) => px.serve(name, app);

/** A fresh hostile app that answers every request with bytes; returns its host. */
async function hostile(bytes: string): Promise<{ host: string; app: RawApp }> {
  const name = `hostile${++appCount}`;
  return { host: `${name}.test`, app: serve(name, await fixedApp(bytes)) };
}

const get = (host: string, path = '/') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
const chunk = (s: string) => `${Buffer.byteLength(s, 'latin1').toString(16)}\r\n${s}\r\n`;

/** Two requests in a row on one client connection: to host, then to the good app. */
async function thenGood(host: string) {
  const { text } = await rawExchange(proxy.port, get(host) + get('good.test'), 2);
  const { responses, rest } = splitResponses(text);
  expect(rest).toBe('');
  expect(text).not.toContain('evil');
  expect(responses).toHaveLength(2);
  expect(responses[1]!.status).toBe(200);
  expect(responses[1]!.body).toBe('good');
  return responses[0]!;
}

describe('one bad answer harms only its own request', () => {
  it('a bare LF in the status line gets that client a 502 with the standard reason, and the proxy serves on', async () => {
    const { host } = await hostile('HTTP/1.1 200 OK\nSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nok');
    const first = await thenGood(host);
    expect(first.status).toBe(502);
    expect(first.head).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(first.head.toLowerCase()).not.toContain('set-cookie');
    // Again, with Node's client: the same 502, and the proxy is still up for everyone.
    expect((await request(proxy.port, host)).status).toBe(502);
    expect((await request(proxy.port, 'good.test')).body).toBe('good');
  });

  it('a header value Node would refuse to send never reaches writeHead: 502, not a crash', async () => {
    for (const bad of ['X-A: a\x00b', 'X-A: a\rb', 'X-A: a\x7fb', 'X-A: \x01']) {
      const { host } = await hostile(`HTTP/1.1 200 OK\r\n${bad}\r\nContent-Length: 2\r\n\r\nok`);
      expect((await thenGood(host)).status, JSON.stringify(bad)).toBe(502);
    }
  });
});

describe('response splitting', () => {
  it('Transfer-Encoding with Content-Length 0, 5 or 100 and a whole response in its chunk: 502, and the next request gets its own app', async () => {
    for (const length of [0, 5, 100]) {
      const { host, app } = await hostile(
        `HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(EVIL)}0\r\n\r\n`,
      );
      expect((await thenGood(host)).status).toBe(502);
      // The app's connection was closed, not kept for the next request.
      expect(await until(() => app.closed() === app.connections())).toBe(true);
    }
    // Node's own client on one kept-alive connection sees the same.
    const { host } = await hostile(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(EVIL)}0\r\n\r\n`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    expect((await request(proxy.port, host, '/', { agent })).status).toBe(502);
    expect((await request(proxy.port, 'good.test', '/', { agent })).body).toBe('good');
    agent.destroy();
  });

  it('bytes after a complete response are dropped with the app connection, never sent or reused', async () => {
    const { host, app } = await hostile(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${EVIL}`);
    const first = await thenGood(host);
    expect(first.body).toBe('ok');
    expect((await request(proxy.port, host)).body).toBe('ok');
    expect(app.connections()).toBe(2);
    // The same bytes a moment later, while the connection sits idle in the pool.
    const late = serve(
      'late',
      await rawApp((s) => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        setTimeout(() => s.write(EVIL), 30);
      }),
    );
    expect((await request(proxy.port, 'late.test')).body).toBe('ok');
    await new Promise((r) => setTimeout(r, 100));
    expect((await request(proxy.port, 'late.test')).body).toBe('ok');
    expect(late.connections()).toBe(2);
  });

  it('a WebSocket upgrade answered with a non-101 response is framed like any response, then the connection closes', async () => {
    // The decoded body is itself a chunked end plus a response: relayed with
    // the app's chunked header it would become the answer to the next request.
    const inner = `0\r\n\r\n${EVIL}`;
    const app = serve('wsnot101', await fixedApp(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(inner)}0\r\n\r\n`));
    const upgrade =
      'GET /ws HTTP/1.1\r\nHost: wsnot101.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const { text, closed } = await rawExchange(proxy.port, upgrade + get('good.test'));
    const { responses, rest } = splitResponses(text);
    expect(rest).toBe('');
    expect(closed).toBe(true);
    expect(responses).toHaveLength(1);
    expect(responses[0]!.status).toBe(200);
    expect(responses[0]!.body).toBe(inner);
    expect(responses[0]!.head.toLowerCase()).toContain('connection: close');
    expect(await until(() => app.closed() === app.connections())).toBe(true);
    // The same hostile framing as on plain requests is a 502.
    serve('wsbad', await fixedApp(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(EVIL)}0\r\n\r\n`));
    const bad = await rawExchange(proxy.port, upgrade.replace('wsnot101', 'wsbad') + get('good.test'));
    const split = splitResponses(bad.text);
    expect(split.responses.map((r) => r.status)).toEqual([502]);
    expect(bad.closed).toBe(true);
    // Another connection gets the good app.
    expect((await request(proxy.port, 'good.test')).body).toBe('good');
  });
});

describe('response framing (RFC 9112 §6 for an intermediary)', () => {
  const cases: [string, string][] = [
    ['bare LF in a header line', 'HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok'],
    ['bare LF ending the head', 'HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok'],
    ['a space inside a header name', 'HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\nok'],
    ['an empty header name', 'HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 2\r\n\r\nok'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'],
    ['a Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok'],
    ['a signed Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok'],
    ['chunked applied twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['a bare CR in the reason', 'HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok'],
    ['whitespace after chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['an empty transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked,\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['chunked before another coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok'],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n'],
    ['a negative chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n'],
    ['a 0x chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n'],
    ['an empty chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nok\r\n0\r\n\r\n'],
    ['a 13-digit chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000002\r\nok\r\n0\r\n\r\n'],
    ['space after the chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n'],
    ['a bare LF after the chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n'],
    ['a NUL in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\x00\r\nok\r\n0\r\n\r\n'],
    ['a control byte in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x01b\r\nok\r\n0\r\n\r\n'],
    ['a bare LF in a chunk extension', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nb\r\nok\r\n0\r\n\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk\r\n0\r\n\r\n'],
    ['a control byte in a trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: \x01\r\n\r\n'],
    ['a folded trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n folded\r\n\r\n'],
    ['a head over 16 KB', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(16 * 1024)}\r\nContent-Length: 2\r\n\r\nok`],
    ['six interim responses', `${'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(6)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`],
    ['101 to a plain request', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['no space after the status', 'HTTP/1.1 200OK\r\nContent-Length: 2\r\n\r\nok'],
    ['not HTTP at all', 'this is not http\r\n\r\n'],
  ];
  it.each(cases)('%s: 502, the app connection closed, and the next request on the client connection gets its own app', async (_name, bytes) => {
    const { host, app } = await hostile(bytes);
    expect((await thenGood(host)).status).toBe(502);
    expect(await until(() => app.connections() > 0 && app.closed() === app.connections())).toBe(true);
  });

  it('replaces a reason phrase with control bytes by the standard one', async () => {
    for (const reason of ['O\x01K', '\x7f', 'O\x00K']) {
      const { host } = await hostile(`HTTP/1.1 200 ${reason}\r\nContent-Length: 2\r\n\r\nok`);
      const r = await thenGood(host);
      expect(r.head, JSON.stringify(reason)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(r.body).toBe('ok');
    }
    const { host } = await hostile('HTTP/1.1 200 Fine by me\r\nContent-Length: 2\r\n\r\nok');
    expect((await thenGood(host)).head).toMatch(/^HTTP\/1\.1 200 Fine by me\r\n/);
  });

  it('a Transfer-Encoding not ending in chunked is read until the app closes, and passed on re-chunked', async () => {
    serve('gzipped', await rawApp((s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip, read to the end')));
    const r = await request(proxy.port, 'gzipped.test');
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBe('gzip, chunked');
    expect(r.body).toBe('not really gzip, read to the end');
    serve('gzchunked', await fixedApp(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunk('zipped')}0\r\n\r\n`));
    const c = await request(proxy.port, 'gzchunked.test');
    expect(c.headers['transfer-encoding']).toBe('gzip, chunked');
    expect(c.body).toBe('zipped');
  });

  it('never sends more bytes than the Content-Length it declared, nor a duplicate Content-Length', async () => {
    const { host } = await hostile('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
    const first = await thenGood(host);
    expect(first.body).toBe('ok');
    const { host: dup } = await hostile('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok');
    const d = await thenGood(dup);
    expect(d.body).toBe('ok');
    expect(d.head.match(/content-length/gi)).toHaveLength(1);
  });

  it('an app that stops mid-body cuts only that response: the client connection closes, the next one is served', async () => {
    const { host, app: cut } = await hostile('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part');
    const pending = request(proxy.port, host);
    await until(() => cut.connections() > 0);
    await cut.close();
    await expect(pending).rejects.toThrow();
    expect((await request(proxy.port, 'good.test')).body).toBe('good');
  });

  it('drops 103 Early Hints and other interim answers on purpose and relays the final one', async () => {
    const { host } = await hostile(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    );
    const informational: number[] = [];
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('information', (info) => informational.push(info.statusCode));
      req.on('error', reject);
    });
    expect(r).toEqual({ status: 201, body: 'ok' });
    expect(informational).toEqual([]);
  });

  it('reads a head dribbled one byte per packet', async () => {
    const head = `HTTP/1.1 200 OK\r\n${'X-Pad: 0123456789\r\n'.repeat(20)}Content-Length: 8\r\n\r\ndribbled`;
    serve(
      'dribble',
      await rawApp((s) => {
        let i = 0;
        const next = () => {
          if (i < head.length && !s.destroyed) s.write(head[i++]!, 'latin1', () => setTimeout(next, 0));
        };
        s.setNoDelay(true);
        next();
      }),
    );
    expect((await request(proxy.port, 'dribble.test')).body).toBe('dribbled');
  });
});

describe('what the proxy accepts from clients', () => {
  it('answers more than 2000 request headers with 431 instead of dropping the body', async () => {
    const echo = serve(
      'counted',
      await rawApp((s, head) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(head.split('\r\n').length - 1).length}\r\n\r\n${head.split('\r\n').length - 1}`)),
    );
    const headers = (n: number) => Array.from({ length: n }, (_, i) => `x${i}: 1\r\n`).join('');
    // Host + 1999 others + Content-Length = 2001.
    const tooMany = await rawExchange(proxy.port, `POST / HTTP/1.1\r\nHost: counted.test\r\n${headers(1999)}Content-Length: 4\r\n\r\nbody`);
    expect(tooMany.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(echo.connections()).toBe(0);
    // Exactly 2000 go through, Content-Length included.
    const fine = await rawExchange(proxy.port, `POST / HTTP/1.1\r\nHost: counted.test\r\n${headers(1998)}Content-Length: 4\r\n\r\nbody`);
    expect(fine.text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('routes an absolute-form request by its authority and sends the app origin-form with that Host', async () => {
    const heads: string[] = [];
    serve(
      'target',
      await rawApp((s, head) => {
        heads.push(head);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ntarget');
      }),
    );
    const r = await rawExchange(proxy.port, 'GET http://Target.test:80/p?q=1 HTTP/1.1\r\nHost: good.test\r\n\r\n');
    expect(splitResponses(r.text).responses[0]!.body).toBe('target');
    expect(heads[0]).toMatch(/^GET \/p\?q=1 HTTP\/1\.1\r\n/);
    expect(heads[0]).toContain('\r\nHost: Target.test:80\r\n');
    expect(heads[0]).toContain('\r\nX-Forwarded-Host: Target.test:80');
    expect(heads[0]).not.toContain('good.test');

    const query = await rawExchange(proxy.port, 'GET http://target.test?x HTTP/1.1\r\nHost: target.test\r\n\r\n');
    expect(splitResponses(query.text).responses[0]!.status).toBe(200);
    expect(heads[1]).toMatch(/^GET \/\?x HTTP\/1\.1\r\n/);

    const unknown = await rawExchange(proxy.port, 'GET http://nowhere.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n');
    expect(splitResponses(unknown.text).responses[0]!.body).toBe("host 'nowhere.test' not found on this server.");
    for (const target of ['http://user@target.test/', 'ftp://target.test/', 'http:///x', 'target.test/x']) {
      const refused = await rawExchange(proxy.port, `GET ${target} HTTP/1.1\r\nHost: target.test\r\n\r\n`);
      expect(refused.text, target).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(heads).toHaveLength(2);
  });

  it('answers /_ping_ itself for every Host no app may own, even one a tenant registered', async () => {
    const tenant = serve('tenant', await fixedApp('HTTP/1.1 500 Tenant\r\nContent-Length: 6\r\n\r\ntenant'));
    // What hostname validation should refuse; the health check must not depend on it.
    proxy.routes.setHosts('tenant', ['127.0.0.1', 'localhost', 'platform.test', '[::1]', '2130706433', 'tenant.platform.test']);
    for (const host of ['127.0.0.1', `127.0.0.1:${proxy.port}`, 'localhost', 'LOCALHOST.', 'platform.test', '[::1]:80', '2130706433', 'unknown.example']) {
      const r = await request(proxy.port, host, '/_ping_');
      expect([r.status, r.body], host).toEqual([200, 'pong']);
    }
    // An app's own name keeps its own /_ping_ path, and other paths on the IP still reach the app.
    expect((await request(proxy.port, 'tenant.platform.test', '/_ping_')).body).toBe('tenant');
    expect((await request(proxy.port, '127.0.0.1', '/other')).body).toBe('tenant');
    expect(tenant.connections()).toBeGreaterThan(0);
  });
});
