// Real PouchDB Servers on loopback standing for the primary CouchDB and its
// remote replica, from one PouchDB Server install shared by the whole suite
// (and by later runs): npm installs it once, into the system's temp folder.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { installPouchdbServer, POUCHDB_SERVER_VERSION } from '../../src/couchdb/embedded-install.js';
import { freePort, pouchdbServerArgs } from '../../src/couchdb/embedded-server.js';

export const POUCHDB_INSTALL = path.join(os.tmpdir(), `platformx-pouchdb-server-${POUCHDB_SERVER_VERSION}`);

/** The first run on a machine installs PouchDB Server (about 350 packages): a hook that does may take this long. */
export const INSTALL_TIMEOUT_MS = 20 * 60_000;

export async function sharedPouchdbInstall(): Promise<string> {
  await installPouchdbServer(POUCHDB_INSTALL, (line) => process.stderr.write(`${line}\n`));
  return POUCHDB_INSTALL;
}

export interface JsonResponse {
  status: number;
  body: any;
}

/** One JSON request to a loopback HTTP server; `url` may carry credentials. */
export function request(method: string, url: string, body?: unknown): Promise<JsonResponse> {
  const u = new URL(url);
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  if (u.username) headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  if (payload) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A stand-alone PouchDB Server with its own data folder (two servers cannot share one). */
export class PouchServer {
  child: ChildProcess | null = null;
  output = '';

  private constructor(readonly dir: string, readonly port: number) {}

  static async start(): Promise<PouchServer> {
    await sharedPouchdbInstall();
    const s = new PouchServer(fs.mkdtempSync(path.join(os.tmpdir(), 'pxdb-')), await freePort());
    await s.boot();
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async boot(): Promise<void> {
    const child = spawn(process.execPath, [...pouchdbServerArgs(POUCHDB_INSTALL, this.port, this.dir), '--no-stdout-logs'], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`PouchDB Server exited: ${this.output}`);
      const ok = await request('GET', `${this.url}/`).then((r) => r.status === 200, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`PouchDB Server did not answer: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.kill9();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The ids of every document in a database (design documents included), sorted. */
export async function docIds(dbUrl: string): Promise<string[]> {
  const r = await request('GET', `${dbUrl}/_all_docs`);
  if (r.status !== 200) throw new Error(`_all_docs of ${new URL(dbUrl).pathname}: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body.rows as Array<{ id: string }>).map((row) => row.id).sort();
}
