import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CouchClient } from './couch-client.js';
import type { AppDatabase, Side } from './couch-state.js';
import { classify } from './gateway-paths.js';

export interface GatewayDeps {
  /** The app whose database user this is, and its record, if the app still exists. */
  lookup(user: string): { app: string; rec: Readonly<AppDatabase> } | null;
  /** Where the app's traffic goes now; null while there is no server to send it to. */
  backend(app: string): { side: Side; client: CouchClient } | null;
  /** The primary is the embedded PouchDB Server, which can run no JavaScript of an app's. */
  embedded(): boolean;
  /** The app wrote something. */
  wrote(app: string): void;
}

/** A design document a JavaScript-less server can take is at most this big. */
const MAX_DESIGN_BYTES = 1024 * 1024;
/** A backend that sends nothing for this long (a hung server) ends the request. */
const IDLE_MS = 120_000;

/** Request headers that stay with this hop, or that would let the app act as someone else. */
const DROP_REQUEST = new Set([
  'host', 'authorization', 'cookie', 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'x-http-method-override', 'destination',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded',
]);
/** Response headers that stay with this hop or name the backend (its address, its cookies). */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'set-cookie', 'location', 'www-authenticate']);

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * The app's only way to its database: `COUCHDB_URL` points here. Checks the
 * app's own credentials, lets through only the paths of its own database that
 * gateway-paths allows, and forwards them with the platform's admin
 * credentials to whichever server Failover says the app uses now. The app
 * never learns the admin credentials or the backend's address.
 */
export class Gateway {
  readonly server: http.Server;
  private readonly open = new Map<string, number>();

  constructor(private readonly d: GatewayDeps) {
    // A request that breaks off mid-body ends itself, never the server.
    this.server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 30_000;
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Requests of the app now open on a side (Failover waits for the replica's to end). */
  inflight(app: string, side: Side): number {
    return this.open.get(`${app}:${side}`) ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const found = this.authenticate(req.headers.authorization);
    if (!found) {
      req.resume();
      return send(res, 401, { error: 'unauthorized', reason: "give the app's credentials (the user and password in COUCHDB_URL)" }, { 'www-authenticate': 'Basic realm="platformx"' });
    }
    const { app, rec } = found;
    const verdict = classify(req.method ?? 'GET', req.url ?? '/', rec.db);
    if ('welcome' in verdict) {
      req.resume();
      return send(res, 200, { couchdb: 'Welcome', vendor: { name: 'platformx' }, db: rec.db });
    }
    if (!verdict.allow) {
      req.resume();
      return send(res, verdict.status, { error: verdict.error, reason: verdict.reason });
    }
    let body: Buffer | null = null;
    if (this.d.embedded()) {
      if (verdict.jsFilter) {
        req.resume();
        return send(res, 403, { error: 'forbidden', reason: 'the embedded CouchDB runs no JavaScript of an app\'s: use filter=_selector or _doc_ids, or Apache CouchDB (--couchdb URL)' });
      }
      if (verdict.designWrite) {
        const checked = await designDocument(req);
        if (typeof checked === 'string') return send(res, 403, { error: 'forbidden', reason: checked });
        body = checked;
      }
    }
    const target = this.d.backend(app);
    if (!target) {
      req.resume();
      return send(res, 503, { error: 'unavailable', reason: 'no CouchDB answers for this database right now: retry shortly' }, { 'retry-after': '1' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') this.d.wrote(app);
    this.forward(req, res, app, target, verdict.path + verdict.query, body);
  }

  private authenticate(header: string | undefined): { app: string; rec: Readonly<AppDatabase> } | null {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? '');
    if (!m) return null;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    const found = this.d.lookup(decoded.slice(0, colon));
    if (!found) return null;
    const given = Buffer.from(hashSecret(decoded.slice(colon + 1)), 'hex');
    const want = Buffer.from(found.rec.secretHash, 'hex');
    return given.length === want.length && timingSafeEqual(given, want) ? found : null;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, app: string, target: { side: Side; client: CouchClient }, pathAndQuery: string, body: Buffer | null): void {
    const { endpoint } = target.client;
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!DROP_REQUEST.has(k) && v !== undefined) headers[k] = v;
    const auth = target.client.authorization;
    if (auth) headers.authorization = auth;
    if (body) {
      headers['content-length'] = body.length;
      headers['content-type'] = 'application/json';
    }
    const key = `${app}:${target.side}`;
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.open.set(key, (this.open.get(key) ?? 1) - 1);
    };
    const url = new URL(endpoint.origin + endpoint.base + pathAndQuery);
    const lib = url.protocol === 'https:' ? https : http;
    const upstream = lib.request(url, { method: req.method, headers, agent: target.client.agent }, (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!DROP_RESPONSE.has(k) && v !== undefined) out[k] = v;
      // The platform's own credentials were refused: the app's are fine, the platform is misconfigured.
      const status = up.statusCode === 401 ? 502 : (up.statusCode ?? 502);
      res.writeHead(status, out);
      up.pipe(res);
      up.on('end', finish);
      up.on('error', () => res.destroy());
    });
    upstream.setTimeout(IDLE_MS, () => upstream.destroy(new Error('the CouchDB sent nothing for too long')));
    upstream.on('error', () => {
      finish();
      if (!res.headersSent) send(res, 503, { error: 'unavailable', reason: 'the CouchDB did not answer: retry shortly' }, { 'retry-after': '1' });
      else res.destroy();
    });
    res.on('close', () => {
      finish();
      // The app went away before the answer ended (a _changes feed it stopped reading): so does the backend request.
      if (!res.writableFinished) upstream.destroy();
    });
    if (body) upstream.end(body);
    else req.pipe(upstream);
  }
}

/** A design document's body, if it is one a server without JavaScript can take (Mango's `language: "query"`); else why not. */
async function designDocument(req: http.IncomingMessage): Promise<Buffer | string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_DESIGN_BYTES) return `a design document may be at most ${MAX_DESIGN_BYTES} bytes`;
    chunks.push(c);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return 'a design document must be sent as JSON';
  }
  if (!doc || typeof doc !== 'object' || (doc as { language?: unknown }).language !== 'query') {
    return 'the embedded CouchDB runs no JavaScript of an app\'s (node:vm is no sandbox): design documents must be Mango ones ("language": "query", made by POST _index); for views use Apache CouchDB (--couchdb URL)';
  }
  // What was checked is what is sent.
  return Buffer.from(JSON.stringify(doc));
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
