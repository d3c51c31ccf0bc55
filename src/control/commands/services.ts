import type { AppLogs } from '../../logs/app-log.js';
import type { Maestro } from '../../maestro/maestro.js';
import type { StateStore } from '../../state/store.js';

/** What command handlers may use. */
export interface CommandServices {
  maestro: Maestro;
  logs: AppLogs;
  store: StateStore;
  /** Addresses and ports the server bound, for messages like "push to …". */
  info: () => ServerInfo;
}

export interface ServerInfo {
  pid: number;
  host: string;
  httpPort: number;
  gitHttpPort: number;
  sshPort: number | null;
  dnodePort: number | null;
  /** The dashboard and /metrics; null when off. */
  dashboardPort: number | null;
  baseDomain: string;
  sshFingerprint: string | null;
  isolation: string;
  dataDir: string;
}

/** Streams a deploy's lines to the command's stdout. */
export const toStdout = (io: { stdout: (t: string) => void }) => (line: string) => io.stdout(line + '\n');
