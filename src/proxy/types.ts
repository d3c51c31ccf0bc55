import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ForwardedRequest } from './forward-headers.js';
import type { Forwarding } from './http-forwarder.js';

// The narrow interface Maestro uses to steer the proxy. Maestro never touches
// sockets; the proxy never reads platform state.

export interface AccessEntry {
  /** App the host routed to, or null for an unknown host. */
  app: string | null;
  host: string;
  method: string;
  path: string;
  sourceIp: string;
  targetPort: number | null;
  status: number;
  ms: number;
}

export interface RouteControl {
  /** Replaces the hostnames (already validated and lower-cased) that route to app. */
  setHosts(app: string, hosts: readonly string[]): void;
  /**
   * Replaces the ports of the app's serving processes in one step, so each request
   * goes either to the old set or the new one. An empty list means the app has no
   * process: the proxy answers 503 at once.
   */
  setBackends(app: string, ports: readonly number[]): void;
  /**
   * The same, gradually over ms when the app is busy (slow start): a share of
   * requests rising from 0 to 1 goes to the new ports, the rest to the previous ones.
   * `busy` is given when the caller counted the app's requests itself (each proxy
   * worker sees only its share); otherwise this table's own rate decides.
   */
  shiftBackends(app: string, ports: readonly number[], ms: number, busy?: boolean): Promise<BackendShift>;
  removeApp(app: string): void;
  /**
   * Resolves once no request or WebSocket is open to port (it no longer gets new
   * ones after setBackends dropped it), or when timeoutMs passes; resolves to the
   * number of connections still open then (they are closed by the caller's SIGTERM).
   */
  drain(port: number, timeoutMs: number): Promise<number>;
}

export interface BackendShift {
  /** False when the switch was at once: nothing before, a quiet app, or ms 0. */
  gradual: boolean;
  /** Resolves once the previous ports get no new requests (drain them then). */
  done: Promise<void>;
}

/**
 * Runs for each request once its headers for the app are made (res is null for
 * an upgrade); may add to fwd.headers. True when it answered the request itself
 * (an ACME challenge, a redirect to HTTPS): the request then goes no further.
 */
export type EdgeHook = (req: IncomingMessage, res: ServerResponse | null, fwd: ForwardedRequest) => boolean;

/** What the server's flags set in the proxy; changeable while it serves (RunningProxy.configure). */
export interface ProxySettings {
  /** The platform's own domain: `/_ping_` there (and on IP literals) is always the proxy's pong. Default localhost. */
  baseDomain: string;
  /** No response head this long after the request was sent: 504. Default 30 s (--request-timeout). */
  requestTimeoutMs: number;
  /** No progress this long while a request or response body streams: both sides closed. Default 60 s (--idle-timeout). */
  idleTimeoutMs: number;
  /**
   * Longest an idle connection to an app is kept for reuse. Default 30 s (--upstream-idle-timeout);
   * an app's own `Keep-Alive: timeout=N` less 1 s wins when shorter (Node apps send 5 s).
   */
  upstreamIdleTimeoutMs: number;
}

export interface ProxyOptions extends Partial<ProxySettings> {
  host: string;
  port: number;
  /** Share the port with other processes' listeners (Linux SO_REUSEPORT, Node >= 22.12). */
  reusePort?: boolean;
  onAccess?: (entry: AccessEntry) => void;
  /** Fills the route table before the listener opens: a new proxy worker never answers from an empty table. */
  seed?: (routes: RouteControl) => void;
  edge?: EdgeHook;
  /** Replaces the built-in HTTP forwarder; the bench compares undici's with it. Upgrades always use the built-in one. */
  forwarder?: Forwarding;
}
