// The SSH front door: public-key auth against the keys in the state store, then
// only git push/fetch for the key's apps, platformx commands through the shared
// dispatcher, and what the legacy hooks add. Shells, ptys, subsystems and
// forwarding are refused; connections, channels and idle time are bounded.
// This file admits sockets and hands each connection to serveConnection.
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ClientInfo, Connection } from 'ssh2';
import { ConnectionCounter, DEFAULT_SSH_LIMITS, normalizeIp, type SshLimits } from './connection-limits.js';
import { ConnectionState } from './connection-state.js';
import type { ExecCommandDeps } from './exec-command.js';
import { loadOrCreateHostKey } from './host-key.js';
import { serveConnection } from './ssh-connection.js';
import type { SshTcpForwardHandler } from './types.js';

const { Server } = ssh2;

/** What exec channels need (pushes run below serving traffic; rsync execs are legacy uploads), plus the listener's own. */
export interface SshServerOptions extends Omit<ExecCommandDeps, 'log'> {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Private host key file; created (ed25519, mode 0600) on first start. */
  hostKeyPath: string;
  /** `ssh -L` forwards (legacy DNode tunnel); refused when absent. */
  onTcpForward?: SshTcpForwardHandler;
  limits?: Partial<SshLimits>;
  /** One line per notable event; never given secrets or command arguments. */
  log?: (line: string) => void;
}

export interface SshServerHandle {
  host: string;
  port: number;
  /** "SHA256:…" of the host key, as ssh prints it. */
  fingerprint: string;
  /** "ssh-ed25519 AAAA…", for a known_hosts line. */
  hostPublicKey: string;
  /** Stops accepting, drops open connections and resolves when the listener is closed. */
  close(): Promise<void>;
}

interface PendingSocket {
  socket: net.Socket;
  authTimer: NodeJS.Timeout;
}

export async function startSshServer(o: SshServerOptions): Promise<SshServerHandle> {
  const limits: SshLimits = { ...DEFAULT_SSH_LIMITS, ...o.limits };
  const hostKey = loadOrCreateHostKey(o.hostKeyPath);
  const counter = new ConnectionCounter(limits);
  const sockets = new Set<net.Socket>();
  // ssh2 reports a connection with its peer address; this finds our socket state by it.
  const pending = new Map<string, PendingSocket>();
  const peerKey = (ip: string | undefined, port: number | undefined) => `${ip}|${port}`;
  const log = o.log ?? (() => {});
  const deps = { ...o, log };

  const ssh = new Server({ hostKeys: [hostKey.privateKey], ident: 'platformx' });

  ssh.on('connection', (client: Connection, info: ClientInfo) => {
    const key = peerKey(info.ip, info.port);
    const accepted = pending.get(key);
    pending.delete(key);
    const conn = new ConnectionState({
      client, ip: normalizeIp(info.ip), socket: accepted?.socket, authTimer: accepted?.authTimer, limits, log,
    });
    serveConnection(client, conn, deps);
  });

  const listener = net.createServer((socket) => {
    const ip = normalizeIp(socket.remoteAddress);
    const slot = counter.admit(ip);
    if ('refused' in slot) {
      // Before the SSH version line a server may send text lines; OpenSSH shows them with -v.
      socket.on('error', () => {});
      socket.end(`platformx: ${slot.refused}\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    sockets.add(socket);
    socket.on('error', () => {});
    const key = peerKey(socket.remoteAddress, socket.remotePort);
    const authTimer = setTimeout(() => socket.destroy(), limits.authTimeoutMs);
    authTimer.unref();
    pending.set(key, { socket, authTimer });
    socket.once('close', () => {
      clearTimeout(authTimer);
      pending.delete(key);
      sockets.delete(socket);
      slot.release();
    });
    ssh.injectSocket(socket);
  });

  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(o.port, o.host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  listener.on('error', (err) => log(`listener error: ${err.message}`));
  const port = (listener.address() as net.AddressInfo).port;

  return {
    host: o.host,
    port,
    fingerprint: hostKey.fingerprint,
    hostPublicKey: hostKey.publicKey,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
