import type { NetworkSummary } from '../../apprunner/network-policy.js';
import type { ProxyWorkerInfo } from '../../dataplane/protocol.js';
import type { AppLogs } from '../../logs/app-log.js';

import type { Maestro } from '../../maestro/maestro.js';
import type { StateStore } from '../../state/store.js';
import { AppStartError, ErrorCode, UserError } from '../../errors.js';

/** What command handlers may use. */
export interface CommandServices {
  maestro: Maestro;
  logs: AppLogs;
  store: StateStore;
  /** Addresses and ports the server bound, for messages like "push to …". */
  info: () => ServerInfo;
  /** The processes serving the proxy's port, asked of the data plane. */
  proxyWorkers: () => Promise<ProxyWorkerInfo[]>;
}

export interface ServerInfo {
  pid: number;
  host: string;
  httpPort: number;
  /** null when HTTPS is off. */
  httpsPort: number | null;
  gitHttpPort: number;
  sshPort: number | null;
  dnodePort: number | null;
  /** The dashboard and /metrics; null when off. */
  dashboardPort: number | null;
  baseDomain: string;
  sshFingerprint: string | null;
  isolation: string;
  network: NetworkSummary;
  dataDir: string;
  /** The CouchDB gateway's loopback port (COUCHDB_URL), or null with --couchdb off. */
  couchdbGatewayPort: number | null;
}

/** Streams a deploy's lines to the command's stdout. */
export const toStdout = (io: { stdout: (t: string) => void }) => (line: string) => io.stdout(line + '\n');

/**
 * Awaits a change that starts new processes (config, rollback, restart, scale,
 * limits). Processes that fail to start are the app's doing (exit 1, not an
 * internal error), and what served before still serves: the message says so.
 */
export async function startingProcesses<T>(app: string, change: Promise<T>): Promise<T> {
  try {
    return await change;
  } catch (err) {
    if (!(err instanceof UserError) || err.code !== ErrorCode.AppStartFailed) throw err;
    throw new AppStartError(`the new processes did not start: ${err.message}; the previous ones keep serving (see 'platformx logs ${app}')`);
  }
}
