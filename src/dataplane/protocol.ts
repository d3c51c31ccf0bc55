// What the server (Maestro's side) and the data plane say to each other over
// DATA/dataplane.sock: newline-delimited JSON, one socket, in order. The data
// plane keeps the proxy's listeners and the app processes, so both outlive a
// restart of the server; the server steers them and writes the logs.

import type { NetworkSummary } from '../apprunner/network-policy.js';
import type { RunSpec } from '../apprunner/types.js';
import type { OpenByApp } from '../proxy/open-exchanges.js';
import type { AccessEntry, ProxySettings } from '../proxy/types.js';

/** Bumped when a message changes shape: a server never steers a data plane of another version. 4: RunSpec.runtime (engines.node). 5: configureProxy. 7: proxy workers (Hello.proxyWorkers, op workers). 8: ProxyWorkerInfo.open, ProxySettings.upstreamIdleTimeoutMs. */
export const DATAPLANE_PROTOCOL = 8;

/** What a hosted process is, so a new server can adopt it. */
export interface ProcessMeta {
  app: string;
  release: number;
  type: string;
  index: number;
  port: number | null;
}

export interface HostedProcessInfo {
  id: string;
  pid: number;
  meta: ProcessMeta;
  startedAt: number;
  /** null while it runs; how it ended, once it has. */
  exit: ExitInfo | null;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One process serving the proxy's port, as server:info shows it. */
export interface ProxyWorkerInfo {
  /** 1..N; 0 is the data plane itself when it runs the proxy in its own process (one worker). */
  slot: number;
  pid: number | null;
  state: 'starting' | 'serving' | 'unresponsive' | 'restarting';
  startedAt: number | null;
  connections: number | null;
  requests: number | null;
  /** Requests and WebSockets it has open per app (null: no answer). */
  open: OpenByApp | null;
  /** Times this slot's worker died and was replaced. */
  restarts: number;
}

/** How the data plane was started: a server with other listeners starts a new one. */
export interface ListenerSpec {
  host: string;
  httpPort: number;
  /** null: no HTTPS listener. */
  httpsPort: number | null;
  /** --deny-egress ranges (validated CIDR texts) the data plane's network policy refuses. */
  denyEgress: string[];
}

export interface Hello {
  protocol: number;
  pid: number;
  startedAt: number;
  listeners: ListenerSpec;
  httpPort: number;
  httpsPort: number | null;
  /** Proxy worker processes it runs (1: the proxy runs in the data plane's own process). */
  proxyWorkers: number;
  isolation: 'sandbox' | 'none';
  /** The network policy its apps run under (it owns the nftables table). */
  network: NetworkSummary;
  processes: HostedProcessInfo[];
}

export type Request =
  | { op: 'hello' }
  /** The server listens now: send what was kept while none was connected, then events as they come. */
  | { op: 'subscribe' }
  /** The server's proxy flags (--base-domain, --request-timeout, --idle-timeout, --upstream-idle-timeout), sent on every start. */
  | { op: 'configureProxy'; settings: ProxySettings }
  | { op: 'setHosts'; app: string; hosts: string[] }
  | { op: 'setBackends'; app: string; ports: number[] }
  | { op: 'shiftBackends'; app: string; ports: number[]; ms: number }
  | { op: 'shiftDone'; app: string }
  | { op: 'removeApp'; app: string }
  | { op: 'drain'; port: number; timeoutMs: number }
  /** Who serves the proxy now: ProxyWorkerInfo[]. */
  | { op: 'workers' }
  | { op: 'spawn'; spec: RunSpec; meta: ProcessMeta }
  | { op: 'signal'; proc: string; signal: NodeJS.Signals }
  | { op: 'foreground'; proc: string }
  | { op: 'forget'; proc: string }
  | { op: 'shutdown' }
  /** Lets the app with `uid` reach one of its platform services (the CouchDB gateway) on loopback `port`. */
  | { op: 'grantService'; uid: number; service: 'couchdb-gateway'; port: number }
  /** The certificates to serve (each once, by index), which host gets which, and the redirect/HSTS policies. Replies the HTTPS port. */
  | { op: 'tls'; certs: Array<{ key: string; chain: string }>; hosts: Array<[string, number]>; fallback: number; policies: Array<[string, { redirect: boolean; hsts: boolean }]> }
  /** An ACME HTTP-01 token the proxy answers on its HTTP port (null: withdrawn). */
  | { op: 'acmeToken'; token: string; entry: { host: string; keyAuthorization: string } | null };

/** A request on the wire: `id` pairs it with its reply. */
export type Call = Request & { id: number };

export type Reply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: string };

/** Sent by the data plane as things happen (batched where they are per request). */
export type Event =
  | { ev: 'output'; lines: Array<{ app: string; tag: string; text: string }> }
  | { ev: 'access'; entries: AccessEntry[] }
  | { ev: 'exit'; id: string; exit: ExitInfo }
  | { ev: 'dropped'; lines: number };

/** The certificates as the data plane's HTTPS listeners get them (the 'tls' request without its op). */
export type TlsMessage = Omit<Extract<Request, { op: 'tls' }>, 'op'>;
/** An ACME HTTP-01 token's answer, or null once withdrawn. */
export type AcmeEntry = Extract<Request, { op: 'acmeToken' }>['entry'];
