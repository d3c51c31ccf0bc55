import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataplaneClient } from './client.js';
import { DATAPLANE_PROTOCOL, type Hello, type ListenerSpec } from './protocol.js';

export interface LaunchOptions {
  socketPath: string;
  dataDir: string;
  logFile: string;
  listeners: ListenerSpec;
  /** Proxy worker processes for a data plane this server starts (a running one keeps its own). */
  proxyWorkers: number;
  log: (line: string) => void;
}

export interface Launched {
  client: DataplaneClient;
  hello: Hello;
  /** False when this server started the data plane (nothing to adopt). */
  reused: boolean;
}

// dist/dataplane/main.js, also when the server runs from src/ (tests import it).
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'dataplane', 'main.js');

/**
 * Connects to the data folder's running data plane, or starts one. A data plane
 * of another protocol version, or with other listeners than asked for, is shut
 * down (its apps with it) and a new one started: the server says so.
 */
export async function launchDataplane(o: LaunchOptions): Promise<Launched> {
  const running = await DataplaneClient.connect(o.socketPath).catch(() => null);
  if (running) {
    const hello = await running.hello();
    const why = mismatch(hello, o.listeners);
    if (!why) {
      if (hello.proxyWorkers !== o.proxyWorkers) {
        o.log(`the running data plane has ${hello.proxyWorkers} proxy worker(s), not ${o.proxyWorkers}: it keeps them while its apps serve on (a start after --stop-apps applies the new count)`);
      }
      return { client: running, hello, reused: true };
    }
    o.log(`the running data plane (pid ${hello.pid}) ${why}: stopping it and its apps, starting a new one`);
    await running.shutdown();
  }
  const out = fs.openSync(o.logFile, 'a', 0o600);
  const child = spawn(process.execPath, [
    MAIN, '--data', o.dataDir, '--socket', o.socketPath, '--host', o.listeners.host, '--http-port', String(o.listeners.httpPort),
    '--https-port', o.listeners.httpsPort === null ? 'off' : String(o.listeners.httpsPort),
    ...o.listeners.denyEgress.flatMap((c) => ['--deny-egress', c]),
    '--proxy-workers', String(o.proxyWorkers),
  ], { detached: true, stdio: ['ignore', out, out], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...crashEnv() } });
  fs.closeSync(out);
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited !== null) throw new Error(`the data plane exited at start (code ${exited}): see ${o.logFile}`);
    const client = await DataplaneClient.connect(o.socketPath).catch(() => null);
    if (client) {
      const hello = await client.hello();
      if (hello.pid === child.pid) return { client, hello, reused: false };
      client.close();
    }
    if (Date.now() > deadline) throw new Error(`the data plane did not start within 20 s: see ${o.logFile}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

function mismatch(h: Hello, want: ListenerSpec): string | null {
  if (h.protocol !== DATAPLANE_PROTOCOL) return `speaks protocol ${h.protocol}, this server ${DATAPLANE_PROTOCOL}`;
  if (h.listeners.host !== want.host) return `listens on ${h.listeners.host}, not ${want.host}`;
  if (want.httpPort !== 0 && h.httpPort !== want.httpPort) return `serves http on port ${h.httpPort}, not ${want.httpPort}`;
  if ((want.httpsPort === null) !== (h.httpsPort === null) || (want.httpsPort && h.httpsPort !== want.httpsPort)) {
    return `serves https on ${h.httpsPort ?? 'no port'}, not ${want.httpsPort ?? 'none'}`;
  }
  if (h.listeners.denyEgress.join(',') !== want.denyEgress.join(',')) return `refuses other ranges (--deny-egress ${h.listeners.denyEgress.join(' ') || 'none'}, not ${want.denyEgress.join(' ') || 'none'})`;
  return null;
}

/** Test crash points reach the data plane too. */
function crashEnv(): Record<string, string> {
  return process.env.PLATFORMX_CRASH_AT ? { PLATFORMX_CRASH_AT: process.env.PLATFORMX_CRASH_AT } : {};
}
