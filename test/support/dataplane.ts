// Starts the real data plane process (dist/dataplane/main.js) on a free port in
// a temp folder and steers it over its socket as the server does; plus raw
// HTTP backends that say who answered and can hold requests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DataplaneClient } from '../../src/dataplane/client.js';
import type { ProxyWorkerInfo } from '../../src/dataplane/protocol.js';
import type { AccessEntry } from '../../src/proxy/types.js';
import { ROOT } from './platform.js';
import type { Balance } from '../../src/dataplane/proxy-workers.js';

export interface RunningDataplane {
  child: ChildProcess;
  client: DataplaneClient;
  port: number;
  /** The HTTPS listener's port (each data plane here has one). */
  httpsPort: number;
  access: AccessEntry[];
  output: () => string;
  workers(): Promise<ProxyWorkerInfo[]>;
  stop(): Promise<void>;
}

export async function startDataplaneProcess(proxyWorkers: number, balance?: Balance): Promise<RunningDataplane> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxw-'));
  const socket = path.join(dir, 'dataplane.sock');
  const child = spawn(process.execPath, [
    path.join(ROOT, 'dist', 'dataplane', 'main.js'), '--data', dir, '--socket', socket, '--host', '127.0.0.1', '--http-port', '0',
    '--https-port', '0', '--proxy-workers', String(proxyWorkers), ...(balance ? ['--balance', balance] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!/^ready (\d+)$/m.test(out)) {
    if (child.exitCode !== null) throw new Error(`data plane exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`data plane did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 30));
  }
  const port = Number(/^ready (\d+)$/m.exec(out)![1]);
  const client = await DataplaneClient.connect(socket);
  const access: AccessEntry[] = [];
  client.on('access', (e) => access.push(e));
  await client.subscribe();
  const { httpsPort } = await client.hello();
  return {
    child, client, port, httpsPort: httpsPort!, access, output: () => out,
    workers: () => client.workers(),
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        await client.shutdown();
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Backend {
  name: string;
  port: number;
  /** Requests that arrived. */
  received: number;
  /** Requests to /hold waiting for release(). */
  held: number;
  release(): void;
  close(): Promise<void>;
}

/** Answers its name; /hold waits until release(). */
export async function backend(name: string): Promise<Backend> {
  const waiting: Array<() => void> = [];
  const b: Backend = {
    name, port: 0, received: 0,
    get held() { return waiting.length; },
    release() {
      for (const w of waiting.splice(0)) w();
    },
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
  const server = http.createServer((req, res) => {
    b.received++;
    if (req.url === '/hold') waiting.push(() => res.end(name));
    else res.end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as AddressInfo).port;
  return b;
}

/**
 * Sends `request` one at a time until every worker has served more than in `before`, reading the
 * counts every `every` requests, at most `max` requests; returns how many each served since.
 * One at a time: on a shared socket the worker that wakes first accepts a whole burst, and
 * reusePort's hash can put a few connections all on one worker.
 */
export async function servedByEach(
  workers: () => Promise<Array<{ requests: number | null }>>, before: Array<{ requests: number | null }>,
  request: () => Promise<void>, o: { every?: number; max?: number } = {},
): Promise<number[]> {
  const every = o.every ?? 1;
  const max = o.max ?? 200;
  for (let sent = 0; ; sent += every) {
    const served = (await workers()).map((w, i) => (w.requests ?? 0) - (before[i]?.requests ?? 0));
    if (served.every((n) => n > 0) || sent >= max) return served;
    for (let i = 0; i < every; i++) await request();
  }
}
