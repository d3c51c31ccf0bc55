import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HEALTHY_RESET_MS, restartDelayMs } from '../maestro/backoff.js';
import { CouchClient } from './couch-client.js';
import type { CouchEndpoint } from './couch-url.js';
import { installPouchdbServer } from './embedded-install.js';

// dist/couchdb/embedded-main.js, also when the server runs from src/ (tests import it).
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'couchdb', 'embedded-main.js');
const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export interface EmbeddedOptions {
  /** DATA/couchdb: the databases go in data/, the pid file and log beside it. */
  dir: string;
  /** Where pouchdb-server is (or will be) installed. */
  installDir: string;
  /** The port it had before (its `_replicator` jobs name it), or null to pick one. */
  port: number | null;
  /** A port was picked: remember it. */
  onPort(port: number): void;
  log(line: string): void;
}

/**
 * The embedded CouchDB: PouchDB Server on loopback, admin party (it answers
 * only on 127.0.0.1, and the network policy keeps apps from its port), its
 * data in DATA/couchdb/data. Supervised like an app process: restarted with
 * the same backoff when it exits, its output in the platform's log. Stopped
 * with the server; a copy left running by a killed server is stopped first,
 * since two servers cannot share one data folder.
 */
export class EmbeddedServer {
  private child: ChildProcess | null = null;
  private stopping = false;
  private restarts = 0;
  private timer: NodeJS.Timeout | null = null;
  private port: number | null;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly o: EmbeddedOptions) {
    this.port = o.port;
  }

  get dataDir(): string {
    return path.join(this.o.dir, 'data');
  }

  private get pidFile(): string {
    return path.join(this.o.dir, 'embedded.pid');
  }

  /** Installs on first use, starts, and resolves with the endpoint once it answers. */
  async start(): Promise<CouchEndpoint> {
    await installPouchdbServer(this.o.installDir, this.o.log);
    fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    await this.stopLeftover();
    if (this.port === null) {
      this.port = await freePort();
      this.o.onPort(this.port);
    }
    this.writeConfig();
    this.spawn();
    const endpoint: CouchEndpoint = { origin: `http://127.0.0.1:${this.port}`, base: '', user: '', password: '' };
    const client = new CouchClient(endpoint);
    try {
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!(await client.ping(1000))) {
        if (Date.now() > deadline) throw new Error(`the embedded CouchDB did not answer on port ${this.port} within ${START_TIMEOUT_MS / 1000} s: see the server's log`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
    return endpoint;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(kill);
    }
    fs.rmSync(this.pidFile, { force: true });
  }

  /** Its log settings: warnings and errors only (every request would be a line otherwise). */
  private writeConfig(): void {
    const file = path.join(this.dataDir, 'config.json');
    let config: Record<string, any> = {};
    try {
      config = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      /* first start */
    }
    config.log = { ...config.log, file: path.join(this.o.dir, 'pouchdb-server.log'), level: 'warning' };
    fs.writeFileSync(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  }

  private spawn(): void {
    const child = spawn(process.execPath, pouchdbServerArgs(this.o.installDir, this.port!, this.dataDir), { cwd: this.o.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.o.dir } });
    this.child = child;
    const startedAt = Date.now();
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    if (child.pid) fs.writeFileSync(this.pidFile, `${child.pid}\n`, { mode: 0o600 });
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => this.o.log(`couchdb: ${l}`));
    }
    child.once('error', (err) => this.o.log(`couchdb: could not start: ${err.message}`));
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      if (Date.now() - startedAt >= HEALTHY_RESET_MS) this.restarts = 0;
      const delay = restartDelayMs(this.restarts++);
      this.o.log(`the embedded CouchDB exited (${signal ?? `code ${code}`}): restarting it in ${delay / 1000} s`);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.stopping) this.spawn();
      }, delay);
    });
  }

  /** A PouchDB Server of this data folder that a killed platform server left running. */
  private async stopLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return;
    }
    const ours = () => {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return cmdline.includes(MAIN) && cmdline.includes(this.dataDir);
      } catch {
        return false;
      }
    };
    if (!Number.isInteger(pid) || pid <= 0 || !ours()) return;
    this.o.log(`stopping the embedded CouchDB a previous server left running (pid ${pid})`);
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (ours() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (ours()) process.kill(pid, 'SIGKILL');
    while (ours()) await new Promise((r) => setTimeout(r, 50));
  }
}

/** node's arguments for a PouchDB Server on 127.0.0.1:port with its data (and config.json) in dataDir, JavaScript off. */
export function pouchdbServerArgs(installDir: string, port: number, dataDir: string): string[] {
  return [MAIN, installDir, '--host', '127.0.0.1', '--port', String(port), '--dir', dataDir, '--config', path.join(dataDir, 'config.json'), '--no-color'];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
