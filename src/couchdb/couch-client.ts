import http from 'node:http';
import https from 'node:https';
import { basicAuth, type CouchEndpoint } from './couch-url.js';

/** Writes over a revision, read again this many times when another writer gets in between. */
const REV_ATTEMPTS = 5;

/** Why a call failed: the server did not answer, or answered with an error status. */
export class CouchError extends Error {
  constructor(message: string, readonly code: 'UNREACHABLE' | 'HTTP', readonly status = 0) {
    super(message);
    this.name = 'CouchError';
  }
}

export interface CouchResponse {
  status: number;
  body: any;
}

/** One change of `_changes?style=all_docs`: the document and its leaf revisions. */
export interface Change {
  id: string;
  seq: string | number;
  changes: Array<{ rev: string }>;
}

/**
 * The platform's admin client for one CouchDB server (CouchDB 3, Cloudant or
 * PouchDB Server): the few calls of its HTTP API the data layer needs. Errors
 * carry a code; the message names the server by origin, never its password.
 */
export class CouchClient {
  readonly agent: http.Agent;
  private readonly auth: string | null;

  constructor(readonly endpoint: CouchEndpoint) {
    const secure = endpoint.origin.startsWith('https:');
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 16 }) : new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.auth = basicAuth(endpoint);
  }

  /** The Authorization header for this server's admin, or null (admin party). */
  get authorization(): string | null {
    return this.auth;
  }

  /** One JSON request; any status comes back (callers branch on 404, 412 …); no answer throws UNREACHABLE. */
  request(method: string, path: string, body?: unknown, timeoutMs = 10_000): Promise<CouchResponse> {
    const url = new URL(this.endpoint.origin + this.endpoint.base + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (this.auth) headers.authorization = this.auth;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new CouchError(`${this.endpoint.origin}: ${err.message}`, 'UNREACHABLE')));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON: callers see the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new CouchError(`${this.endpoint.origin} did not answer: ${err.message}`, 'UNREACHABLE')));
      req.end(payload);
    });
  }

  /** Like request, but a status of 400 or more throws HTTP with CouchDB's reason. */
  async ok(method: string, path: string, body?: unknown, accept: number[] = []): Promise<CouchResponse> {
    const r = await this.request(method, path, body);
    if (r.status >= 400 && !accept.includes(r.status)) {
      const reason = r.body && typeof r.body === 'object' ? `${r.body.error}: ${r.body.reason}` : String(r.body).slice(0, 200);
      throw new CouchError(`${this.endpoint.origin} answered ${method} ${path.split('?')[0]} with ${r.status} (${reason})`, 'HTTP', r.status);
    }
    return r;
  }

  /** The welcome document answers: the server is up. */
  async ping(timeoutMs: number): Promise<boolean> {
    try {
      const r = await this.request('GET', '/', undefined, timeoutMs);
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /** Creates the database if it is not there; true when it was made now. */
  async ensureDatabase(db: string): Promise<boolean> {
    const r = await this.ok('PUT', `/${encodeURIComponent(db)}`, undefined, [412]);
    return r.status !== 412;
  }

  /** Deletes the database; false when there was none. */
  async deleteDatabase(db: string): Promise<boolean> {
    const r = await this.ok('DELETE', `/${encodeURIComponent(db)}`, undefined, [404]);
    return r.status !== 404;
  }

  async databaseInfo(db: string): Promise<{ doc_count: number; update_seq: string | number } | null> {
    const r = await this.ok('GET', `/${encodeURIComponent(db)}`, undefined, [404]);
    return r.status === 404 ? null : r.body;
  }

  /** Changes after `since` (oldest first), each with all its leaf revisions. */
  async changes(db: string, since: string | number, limit: number): Promise<{ results: Change[]; last_seq: string | number }> {
    const q = new URLSearchParams({ since: String(since), limit: String(limit), style: 'all_docs' });
    return (await this.ok('GET', `/${encodeURIComponent(db)}/_changes?${q}`)).body;
  }

  /** Which of these revisions the database lacks, by document. */
  async revsDiff(db: string, revs: Record<string, string[]>): Promise<Record<string, { missing: string[] }>> {
    return (await this.ok('POST', `/${encodeURIComponent(db)}/_revs_diff`, revs)).body ?? {};
  }

  /** A document, or null when there is none. */
  async getDoc(db: string, id: string): Promise<Record<string, any> | null> {
    const r = await this.ok('GET', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}`, undefined, [404]);
    return r.status === 404 ? null : r.body;
  }

  /** Writes a document whole, over its current revision if there is one. */
  async putDoc(db: string, id: string, doc: Record<string, unknown>): Promise<void> {
    await this.overCurrentRev(db, id, (current) =>
      this.ok('PUT', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}`, current ? { ...doc, _rev: current._rev } : doc, [409]));
  }

  /** Deletes a document; false when there was none. */
  async deleteDoc(db: string, id: string): Promise<boolean> {
    let existed = true;
    await this.overCurrentRev(db, id, async (current) => {
      existed = current !== null;
      if (!current) return { status: 200, body: null };
      return this.ok('DELETE', `/${encodeURIComponent(db)}/${encodeURIComponent(id)}?rev=${encodeURIComponent(current._rev)}`, undefined, [404, 409]);
    });
    return existed;
  }

  /**
   * A write over the document's current revision, read again when another writer
   * got in between (409): the replicator itself updates its _replicator documents.
   */
  private async overCurrentRev(db: string, id: string, write: (current: Record<string, any> | null) => Promise<CouchResponse>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = await write(await this.getDoc(db, id));
      if (r.status !== 409) return;
      if (attempt === REV_ATTEMPTS) throw new CouchError(`${this.endpoint.origin}: ${db}/${id} kept changing under ${REV_ATTEMPTS} writes (409 conflict each time)`, 'HTTP', 409);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
