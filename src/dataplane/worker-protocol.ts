// What the data plane (the primary) and its proxy worker processes say to each
// other over the Node IPC channel of each worker. The primary keeps the route
// table and the proxy's state of record and sends every change to every worker;
// a worker applies it and answers, so the primary knows when a change is in
// force everywhere.

import type { OpenByApp } from '../proxy/open-exchanges.js';
import type { AccessEntry, ProxySettings } from '../proxy/types.js';
import type { AcmeEntry, TlsMessage } from './protocol.js';
import type { StackListen, StackState } from './proxy-stack.js';

/** One app's routes as the primary recorded them; a new worker starts from the whole list. */
export interface RouteEntry {
  app: string;
  hosts: string[];
  ports: number[];
}

export type WorkerCall =
  | { op: 'setHosts'; app: string; hosts: string[] }
  | { op: 'setBackends'; app: string; ports: number[] }
  /** busy: the primary's verdict from the app's request rate across all workers. */
  | { op: 'shiftBackends'; app: string; ports: number[]; ms: number; busy: boolean }
  | { op: 'shiftDone'; app: string }
  | { op: 'removeApp'; app: string }
  | { op: 'drain'; port: number; timeoutMs: number }
  | { op: 'configure'; settings: ProxySettings }
  | { op: 'tls'; tls: TlsMessage }
  | { op: 'acmeToken'; token: string; entry: AcmeEntry }
  | { op: 'stats' };

export interface WorkerStats {
  connections: number;
  /** Requests answered (an access entry each) since the worker started. */
  requests: number;
  open: OpenByApp;
}

export type ToWorker =
  /** Where to listen, and everything to apply before it does. */
  | { t: 'init'; listen: StackListen; state: StackState; table: RouteEntry[] }
  | { t: 'call'; id: number; call: WorkerCall };

export type FromWorker =
  /** Loaded and waiting for its init. */
  | { t: 'booted' }
  /** Listening, with the whole table applied. */
  | { t: 'ready'; port: number; httpsPort: number | null }
  | { t: 'failed'; error: string }
  | { t: 'reply'; id: number; ok: true; value?: unknown }
  | { t: 'reply'; id: number; ok: false; error: string }
  | { t: 'access'; entries: AccessEntry[] };
