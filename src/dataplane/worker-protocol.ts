// What the data plane (the primary) and its proxy worker processes say to each
// other over the Node IPC channel of each worker. The primary keeps the route
// table of record and sends every change to every worker; a worker applies it
// and answers, so the primary knows when a change is in force everywhere.

import type { AccessEntry, ProxyOptions } from '../proxy/types.js';

/** One app's routes as the primary recorded them; a new worker starts from the whole list. */
export interface RouteEntry {
  app: string;
  hosts: string[];
  ports: number[];
}

/**
 * The proxy's options as every worker gets them (what can cross the IPC channel):
 * each worker runs startProxy with these, its own onAccess and the table as seed.
 * reusePort: each worker has its own listener on the port; otherwise cluster's primary accepts and hands out.
 */
export type WorkerProxyOptions = Omit<ProxyOptions, 'onAccess' | 'seed'>;

export type WorkerCall =
  | { op: 'setHosts'; app: string; hosts: string[] }
  | { op: 'setBackends'; app: string; ports: number[] }
  /** busy: the primary's verdict from the app's request rate across all workers. */
  | { op: 'shiftBackends'; app: string; ports: number[]; ms: number; busy: boolean }
  | { op: 'shiftDone'; app: string }
  | { op: 'removeApp'; app: string }
  | { op: 'drain'; port: number; timeoutMs: number }
  | { op: 'stats' };

export interface WorkerStats {
  connections: number;
  /** Requests answered (an access entry each) since the worker started. */
  requests: number;
}

export type ToWorker =
  | { t: 'init'; proxy: WorkerProxyOptions; table: RouteEntry[] }
  | { t: 'call'; id: number; call: WorkerCall };

export type FromWorker =
  /** Loaded and waiting for its init. */
  | { t: 'booted' }
  /** Listening, with the whole table applied. */
  | { t: 'ready'; port: number }
  | { t: 'failed'; error: string }
  | { t: 'reply'; id: number; ok: true; value?: unknown }
  | { t: 'reply'; id: number; ok: false; error: string }
  | { t: 'access'; entries: AccessEntry[] };
