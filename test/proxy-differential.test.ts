// Differential test of the proxy's response handling: many hostile and random
// byte streams from one raw app, each read twice by Node's own strict http
// client (llhttp): straight from the app, and through the real proxy on a
// kept-alive client connection that then asks another app. Through the proxy
// every stream must give exactly one well-framed response (or a 502), the same
// status and body llhttp read straight from the app whenever that was a clean
// response, and the next request on that connection must get the other app's
// body. PROXY_DIFF_SEED=n and PROXY_DIFF_STREAMS=n explore further.
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixedApp, proxyWithApps, rawApp, until, type ProxyWithApps, type RawApp } from './support/proxy-apps.js';

const SEED = Number(process.env.PROXY_DIFF_SEED ?? 12);
const RANDOM_STREAMS = Number(process.env.PROXY_DIFF_STREAMS ?? 400);
const PARALLEL = 8;

const EVIL = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil';
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;

/** Well-formed answers the random streams start from. */
const TEMPLATES = [
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello',
  `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('hel')}3;ext="v"\r\nlo!\r\n0\r\nX-Sum: 1\r\n\r\n`,
  'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end',
  'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 10\r\n\r\n',
  'HTTP/1.1 404 Not Found\r\nConnection: close, x-drop\r\nX-Drop: 1\r\nContent-Length: 3\r\n\r\nnop',
  `HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(EVIL)}0\r\n\r\n`,
  `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${EVIL}`,
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\ngzip\r\n0\r\n\r\n',
];

/** Byte strings the mutations insert: framing characters and whole framing headers. */
const INSERTS = [
  '\r', '\n', '\r\n', '\r\n\r\n', '\0', ' ', '\t', ':', ';', ',', '0', 'f', 'ffffffffffffffff', '-', '\x7f', '\x80', '\xff', '"',
  'chunked', 'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip\r\n', 'Content-Length: 3\r\n', 'Content-Length: 0\r\n',
  'Content-Length: 99999\r\n', 'Connection: close\r\n', 'HTTP/1.1 100 Continue\r\n\r\n', ' folded\r\n', EVIL, '0\r\n\r\n',
];

/** mulberry32: a small seeded generator, so every failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const at = () => Math.floor(rnd() * (text.length + 1));
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    const op = rnd();
    const p = at();
    if (op < 0.5) text = text.slice(0, p) + pick(INSERTS) + text.slice(p);
    else if (op < 0.7) text = text.slice(0, p) + text.slice(p + 1 + Math.floor(rnd() * 4));
    else if (op < 0.9) text = text.slice(0, p) + String.fromCharCode(Math.floor(rnd() * 256)) + text.slice(p + 1);
    else {
      // Repeat a whole line.
      const start = text.lastIndexOf('\r\n', p) + 2;
      const end = text.indexOf('\r\n', p);
      if (end > start) text = text.slice(0, end + 2) + text.slice(start, end + 2) + text.slice(end + 2);
    }
  }
  return text;
}

/** Hand-picked hostile streams: splitting, smuggling and framing tricks. */
const CORPUS = [
  'HTTP/1.1 200 OK\nSet-Cookie: x=1\r\nContent-Length: 2\r\n\r\nok',
  `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(EVIL)}0\r\n\r\n`,
  `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n${chunk(EVIL)}0\r\n\r\n`,
  `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(`0\r\n\r\n${EVIL}`)}0\r\n\r\n`,
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n4\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding:\x0bchunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nContent-Length: 0x4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nContent-Length: 4 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nX: y\r\n Content-Length: 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nX: y\rContent-Length: 4\r\n\r\nevil',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;\nx\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nevil\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nevil\r\n0\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000004\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' + EVIL,
  'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nev',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nev',
  'HTTP/1.1 200 OK\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nevil',
  'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nevil\r\n0\r\n\r\n',
  'HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok',
  'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok',
  'http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  ' HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(17_000)}\r\nContent-Length: 2\r\n\r\nok`,
  `HTTP/1.1 200 OK\r\n${'X-M: 1\r\n'.repeat(2100)}Content-Length: 2\r\n\r\nok`,
  '',
  'garbage',
];

interface Outcome {
  kind: 'response' | 'cut' | 'error' | 'hang';
  status?: number;
  body?: string;
  error?: string;
  reused?: boolean;
}

/** Reads one answer with Node's client: a whole response, one cut after its head, an error before it, or a hang. */
function fetchOutcome(port: number, host: string, path: string, agent: http.Agent | false): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish({ kind: 'hang' });
    }, 3000);
    let status = (): number | undefined => undefined;
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      status = () => res.statusCode;
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c) => (body += c));
      res.on('end', () => finish({ kind: 'response', status: res.statusCode, body, reused: req.reusedSocket }));
      res.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'cut', status: res.statusCode, error: e.code ?? e.message }));
      res.on('aborted', () => finish({ kind: 'cut', status: res.statusCode, error: 'aborted' }));
    });
    // The status of a head llhttp did read before it choked on what followed.
    req.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', status: status(), error: e.code ?? e.message }));
  });
}

let px: ProxyWithApps;
/** One hostile app per worker, so no stream's leftovers can meet another stream on a reused connection. */
const hostileApps: RawApp[] = [];
const streams: string[] = [];

/** GET /N answers stream N, in one or a few writes, then closes its side. */
function writeStream(socket: net.Socket, head: string): void {
  const n = Number(/^GET \/(\d+) /.exec(head)?.[1]);
  const bytes = Buffer.from(streams[n] ?? '', 'latin1');
  const cut = n % 3 === 0 ? [] : [Math.floor(bytes.length / 3), Math.floor((2 * bytes.length) / 3)];
  let from = 0;
  const next = () => {
    const to = cut.shift() ?? bytes.length;
    socket.write(bytes.subarray(from, to));
    from = to;
    if (from < bytes.length) setTimeout(next, 1);
    else socket.end();
  };
  next();
}

beforeAll(async () => {
  const rnd = prng(SEED);
  streams.push(...CORPUS);
  for (let i = 0; i < RANDOM_STREAMS; i++) streams.push(mutate(TEMPLATES[i % TEMPLATES.length]!, rnd));
  px = await proxyWithApps({ requestTimeoutMs: 1500, idleTimeoutMs: 1500 });
  px.serve('good', await fixedApp('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood'));
  for (let w = 0; w < PARALLEL; w++) hostileApps.push(px.serve(`hostile${w}`, await rawApp(writeStream)));
});
afterAll(() => px.close());

it('every hostile or random response stream gives its client one well-framed answer and leaves the connection clean', async () => {
  const problems: string[] = [];
  const stats = { same: 0, badGateway: 0, cut: 0, lenient: 0 };
  const check = async (n: number, w: number) => {
    const stream = streams[n]!;
    const app = hostileApps[w]!;
    const direct = await fetchOutcome(app.port, 'x', `/${n}`, false);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const proxied = await fetchOutcome(px.proxy.port, `hostile${w}.test`, `/${n}`, agent);
    const next = await fetchOutcome(px.proxy.port, 'good.test', '/', agent);
    agent.destroy();
    const say = (what: string) =>
      problems.push(`stream ${n} ${escape(stream.slice(0, 300))}: ${what}; direct ${JSON.stringify(direct)}, proxied ${JSON.stringify(proxied)}, next ${JSON.stringify(next)}`);

    // The app closed its side after the stream: once the proxy has too, the next stream starts clean.
    if (!(await until(() => app.closed() === app.connections(), 2000))) return say('the app connection stayed open after the app closed it');

    if (next.kind !== 'response' || next.body !== 'good') return say('the next request did not get the good app');
    if (proxied.kind === 'response' && !next.reused) return say('the client connection was not kept after a whole response');
    if (proxied.kind === 'hang' || proxied.kind === 'error') return say('no well-framed answer through the proxy');
    const clean = direct.kind === 'response';
    if (proxied.kind === 'cut') {
      // Only once the app itself broke its response after the head went out.
      if (clean) return say('cut a response llhttp reads whole');
      stats.cut++;
    } else if (proxied.status === 502) {
      if (clean && !stricterOnPurpose(stream)) return say('502 for a response llhttp reads whole');
      stats.badGateway++;
    } else if (clean) {
      if (proxied.status !== direct.status || proxied.body !== direct.body) return say('a different answer than llhttp reads');
      stats.same++;
    } else {
      // llhttp refuses what the proxy relays: bytes after a complete response
      // (llhttp read the head, then choked on what followed; the proxy drops
      // them with the connection), a duplicate identical Content-Length, which
      // the proxy collapses (RFC 9110 §8.6), one with whitespace around it, or
      // headers of an interim response.
      const trailing = direct.status === proxied.status;
      const lengths = [...finalHead(stream).matchAll(/\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n|$)/gi)].map((m) => Number(m[1]));
      const sameLengthTwice = lengths.length > 1 && lengths.every((l) => l === lengths[0]);
      // Whitespace around a field value is not part of it (RFC 9110 §5.5).
      const paddedLength = /\r\ncontent-length:[ \t]*\d+[ \t]+\r\n/i.test(stream);
      // Connection: close or a repeated Content-Length on an interim response, whose headers the proxy drops.
      const interimHeaders =
        /^HTTP\/1\.[01] 1\d\d /.test(stream) && ['HPE_CLOSED_CONNECTION', 'HPE_UNEXPECTED_CONTENT_LENGTH'].includes(direct.error!);
      if (!trailing && !sameLengthTwice && !paddedLength && !interimHeaders) return say('relayed what llhttp refuses');
      stats.lenient++;
    }
  };
  let i = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async (_, w) => {
      while (i < streams.length) await check(i++, w);
    }),
  );
  expect(problems.slice(0, 12)).toEqual([]);
  // The run covered each kind of outcome, so it tested something.
  expect(stats.same).toBeGreaterThan(20);
  expect(stats.badGateway).toBeGreaterThan(20);
  expect(stats.same + stats.badGateway + stats.cut + stats.lenient).toBe(streams.length);
});

/** The head of the first response after any interim (1xx) ones, without its CRLFCRLF. */
function finalHead(stream: string): string {
  let pos = 0;
  for (;;) {
    const end = stream.indexOf('\r\n\r\n', pos);
    const head = stream.slice(pos, end < 0 ? undefined : end);
    if (end < 0 || !/^HTTP\/1\.[01] 1\d\d/.test(head)) return head;
    pos = end + 4;
  }
}

/** The stream as a JSON string with every byte outside printable ASCII escaped. */
function escape(text: string): string {
  return JSON.stringify(text).replace(/[\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** Streams llhttp reads whole that the proxy refuses by design (docs/security.md). */
function stricterOnPurpose(stream: string): boolean {
  const end = stream.indexOf('\r\n\r\n');
  const head = end < 0 ? stream : stream.slice(0, end);
  const codings = [...head.matchAll(/\r\ntransfer-encoding:([^\r\n]*)/gi)]
    .flatMap((m) => m[1]!.split(','))
    .map((c) => c.trim().toLowerCase());
  return (
    // More than five interim responses.
    (stream.match(/HTTP\/1\.[01] 1\d\d/g) ?? []).length > 5 ||
    // Versions other than 1.0 and 1.1, status codes below 100 (in any head).
    !/^HTTP\/1\.[01] [1-9]/.test(stream) ||
    /\r\n\r\nHTTP\/1\.[01] 0/.test(stream) ||
    // A bare CR in a status line (llhttp reads some as a line end).
    /(?:^|\n)HTTP\/[^\n]*\r(?!\n)/.test(stream) ||
    // A head over 16 KB.
    end > 16 * 1024 - 4 ||
    // An empty line (or a bare LF) between an interim response and the next head.
    /HTTP\/1\.[01] 1\d\d[^]*?\r\n\r\n[\r\n]/.test(stream) ||
    // Whitespace after a Transfer-Encoding value (llhttp reads `chunked<TAB>` as not chunked).
    /\r\ntransfer-encoding:[^\r\n]*[ \t](?:\r\n|$)/i.test(head) ||
    // A transfer coding that is not a token (or empty), or chunked before the
    // last one (passing that on would apply chunked twice).
    codings.some((c) => !/^[!#$%&'*+\-.^_`|~0-9a-z]+(;.*)?$/.test(c)) ||
    codings.slice(0, -1).includes('chunked')
  );
}
