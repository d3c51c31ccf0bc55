// Maestro 0.3's DNode endpoint (--dnode-port, default 7272 on 127.0.0.1).
// Two ways in: an SSH port forward to it (served in-process with the key's
// scope, see `serve`) and a direct TCP connection, which carries no key and is
// only trusted from the networks named by --dnode-allow.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Caller } from '../control/types.js';
import type { Maestro } from '../maestro/maestro.js';

import { refuseDnode, serveDnode, type DnodeSession } from './dnode-session.js';
import { LegacyApps } from './legacy-apps.js';
import { PeerAllowList } from './peer-allow-list.js';
import type { UploadFolders } from './upload-folders.js';
import { UserError } from '../errors.js';

export interface DnodeServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** --dnode-allow entries; empty refuses every direct connection. */
  allow: readonly string[];
  maestro: Maestro;
  uploads: UploadFolders;
  /** The SSH port, for the hint given to refused clients (a function: SSH may start after this). */
  sshPort?: () => number | null;
  log?: (line: string) => void;
  maxConnections?: number;
}

export interface DnodeServer {
  port: number;
  /** Serves one session for a caller on a stream (the SSH server's forward to the DNode port). */
  serve(stream: Duplex, caller: Caller): DnodeSession;
  /** True when an SSH direct-tcpip request targets this endpoint (127.0.0.1/localhost/::1 and its port). */
  isForwardTarget(host: string, port: number): boolean;
  close(): Promise<void>;
}

const IDLE_MS = 30 * 60_000;
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '::1', 'ip6-localhost']);

export async function startDnodeServer(o: DnodeServerOptions): Promise<DnodeServer> {
  const log = o.log ?? (() => {});
  const allow = new PeerAllowList(o.allow);
  const legacy = new LegacyApps({ maestro: o.maestro, uploads: o.uploads, log });
  const sessions = new Set<DnodeSession>();
  const track = (s: DnodeSession) => {
    sessions.add(s);
    void s.closed.then(() => sessions.delete(s));
    return s;
  };
  let port = o.port;

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => {});
    const peer = socket.remoteAddress ?? 'unknown';
    if (allow.allows(socket.remoteAddress)) {
      // Trusted by network (documented in docs/legacy-sdk.md): every app, as an admin would.
      track(serveDnode(socket, { kind: 'local', name: `dnode@${peer}`, admin: true, apps: [] }, legacy, log));
      return;
    }
    log(`dnode: refused a direct connection from ${peer} (not in --dnode-allow)`);
    const ssh = o.sshPort?.() ?? 2222;
    track(refuseDnode(socket,
      `direct DNode connections are not accepted from ${peer}: tunnel over SSH with your deploy key ` +
      `(ssh -N -L ${port}:127.0.0.1:${port} -p ${ssh} git@HOST), or ask the server's administrator for --dnode-allow`, log));
  });
  server.maxConnections = o.maxConnections ?? 64;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE'
        ? new UserError(`--dnode-port ${o.port} is already in use on ${o.host}: pick another port or 'off'`)
        : err));
    server.listen(o.port, o.host, () => resolve());
  });
  server.on('error', (err) => log(`dnode: listener error: ${err.message}`));
  port = (server.address() as net.AddressInfo).port;

  return {
    port,
    serve: (stream, caller) => track(serveDnode(stream, caller, legacy, log)),
    isForwardTarget: (host, p) => p === port && LOOPBACK_NAMES.has(host.toLowerCase()),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.close();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A direct-tcpip (ssh -L) request, as the SSH server's onTcpForward hook describes it. */
export interface ForwardRequest {
  caller: Caller;
  destHost: string;
  destPort: number;
}

/**
 * The SSH server's onTcpForward hook: a forward to the DNode endpoint is served
 * in-process with the key's scope (nothing is connected on the network); every
 * other forward is refused. With the endpoint off (null), all are refused.
 */
export function dnodeForwardHandler(server: DnodeServer | null, log: (line: string) => void = () => {}) {
  return (req: ForwardRequest, accept: () => Duplex, reject: () => void): void => {
    if (!server || !server.isForwardTarget(req.destHost, req.destPort)) {
      log(`ssh: refused a port forward to ${req.destHost}:${req.destPort} for key ${req.caller.name} (only the DNode endpoint may be forwarded)`);
      reject();
      return;
    }
    server.serve(accept(), req.caller);
  };
}
