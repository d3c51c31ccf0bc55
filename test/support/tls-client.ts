// Clients for the HTTPS tests: every connection goes to 127.0.0.1 with the
// test's hostname as SNI and Host, as a browser resolving it there would.
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { AppRepo, waitFor } from './apps.js';
import type { Platform } from './platform.js';

export interface TlsPeer {
  serial: string;
  hosts: string;
  issuer: string;
  authorized: boolean;
  authorizationError: string | null;
  alpn: string | false;
}

/** Handshakes with servername and reports the certificate the server chose. */
export function peerCert(port: number, servername: string | null, ca?: string | string[]): Promise<TlsPeer> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: servername ?? undefined, ca, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const c = s.getPeerCertificate();
      resolve({
        serial: c.serialNumber.toLowerCase(), hosts: c.subjectaltname ?? '', issuer: String(c.issuer?.CN ?? ''),
        authorized: s.authorized, authorizationError: s.authorizationError ? String(s.authorizationError) : null, alpn: s.alpnProtocol ?? false,
      });
      s.destroy();
    });
    s.on('error', reject);
  });
}

export interface Resumption {
  resumed: boolean;
  /** The last session ticket the server sent on this connection; null: none. */
  ticket: Buffer | null;
  body: string;
}

/**
 * One HTTP/1.1 request on a new TLS 1.3 connection offering `ticket` (as a
 * client that uses each ticket once does), with what the server sent back.
 */
export function resumeWith(port: number, host: string, ticket: Buffer | null): Promise<Resumption> {
  return new Promise((resolve, reject) => {
    let fresh: Buffer | null = null;
    let body = '';
    let resumed = false;
    const s = tls.connect({ host: '127.0.0.1', port, servername: host, rejectUnauthorized: false, minVersion: 'TLSv1.3', ALPNProtocols: ['http/1.1'], session: ticket ?? undefined }, () => {
      resumed = s.isSessionReused();
      s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    s.on('session', (t: Buffer) => (fresh = t));
    s.setEncoding('utf8');
    s.on('data', (c: string) => (body += c));
    s.on('end', () => s.end());
    s.on('close', () => resolve({ resumed, ticket: fresh, body: body.slice(body.indexOf('\r\n\r\n') + 4) }));
    s.on('error', reject);
  });
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP/1.1 request over TLS; with ca the certificate must verify for host. */
export function httpsGet(port: number, host: string, urlPath = '/', opts: { ca?: string | string[]; headers?: Record<string, string>; agent?: https.Agent | false } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: urlPath, servername: host, ca: opts.ca, rejectUnauthorized: opts.ca !== undefined,
      headers: { host: `${host}:${port}`, ...opts.headers }, agent: opts.agent ?? false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/2 session to host (ALPN h2) on 127.0.0.1:port. */
export function h2Session(port: number, host: string, ca?: string | string[]): http2.ClientHttp2Session {
  return http2.connect(`https://${host}:${port}`, {
    createConnection: () => tls.connect({ host: '127.0.0.1', port, servername: host, ca, rejectUnauthorized: ca !== undefined, ALPNProtocols: ['h2'] }),
  });
}

export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let data = '';
    let head: http2.IncomingHttpHeaders = {};
    req.setEncoding('utf8');
    req.on('response', (h) => (head = h));
    req.on('data', (c) => (data += c));
    req.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: data }));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) req.end(body);
  });
}

/** An app that answers JSON of what it got (method, url, headers, body), sets two cookies, and echoes upgraded streams. */
export function echoApp(name: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name, version: '1.0.0', scripts: { start: 'node server.js' } }),
    'server.js': `const http = require('http');
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(JSON.stringify({ app: ${JSON.stringify(name)}, method: req.method, url: req.url, headers: req.headers, body }));
  });
});
server.on('upgrade', (req, socket) => {
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nX-Proto: ' + req.headers['x-forwarded-proto'] + '\\r\\n\\r\\n');
  socket.on('data', (d) => socket.write('echo:' + d));
  socket.on('error', () => socket.destroy());
});
server.listen(process.env.PORT);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  };
}

/** Creates app with domains and deploys the echo app; resolves once it answers over HTTP. */
export async function deployEcho(px: Platform, app: string, domains: string[]): Promise<AppRepo> {
  await px.ok(['apps:create', app, ...domains.flatMap((d) => ['--domain', d])]);
  const token = (await px.ok(['tokens:create', app])).trim();
  const repo = await AppRepo.create(echoApp(app));
  const push = await repo.push(px.gitUrl(app, token));
  if (push.code !== 0) throw new Error(`push of ${app} failed: ${push.stderr}`);
  await waitFor(async () => {
    const r = await httpsGet(px.info.httpsPort!, `${app}.localhost`, '/');
    return r.status === 200;
  }, 60_000, `${app} to serve`);
  return repo;
}
