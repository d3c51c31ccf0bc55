// One SSH connection's events, each handed to the module for its kind: key
// authentication, session channels (exec) and direct-tcpip forwards.
import type { Connection } from 'ssh2';
import { authenticate } from './connection-auth.js';
import type { ConnectionState } from './connection-state.js';
import type { ExecCommandDeps } from './exec-command.js';
import { openSession } from './session-channel.js';
import { openTcpForward } from './tcpip-channel.js';
import type { SshTcpForwardHandler } from './types.js';

export interface ConnectionDeps extends ExecCommandDeps {
  /** `ssh -L` forwards; refused when absent. */
  onTcpForward?: SshTcpForwardHandler;
}

export function serveConnection(client: Connection, conn: ConnectionState, deps: ConnectionDeps): void {
  const { log } = deps;
  client.on('error', (err: Error & { level?: string }) => {
    if (err.level !== 'socket' && err.level !== 'client-timeout') log(`connection from ${conn.ip}: ${err.message}`);
  });
  client.on('close', () => conn.closed());
  client.on('authentication', (ctx) => authenticate(ctx, conn, deps.store, log));
  client.on('ready', () => conn.ready());
  client.on('session', (accept, reject) => openSession(accept, reject, conn, deps));
  client.on('tcpip', (accept, reject, info) => openTcpForward(accept, reject, info, conn, deps.onTcpForward, log));
  // Global requests (ssh -R, streamlocal) have no listener: ssh2 answers them with a failure.
}
