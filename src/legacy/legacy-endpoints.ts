// The legacy SDK's two ways in, started together for `platformx server`: the
// rsync upload hook and the DNode forward hook for the SSH server, and the DNode
// listener (--dnode-port/--dnode-host/--dnode-allow).
import type { Maestro } from '../maestro/maestro.js';
import type { DataPaths } from '../state/paths.js';
import { dnodeForwardHandler, startDnodeServer, type DnodeServer } from './dnode-endpoint.js';
import { rsyncUploadHandler } from './rsync-receiver.js';
import { UploadFolders } from './upload-folders.js';

export interface LegacyEndpointOptions {
  maestro: Maestro;
  paths: DataPaths;
  dnodeHost: string;
  /** null: no DNode endpoint (and no tunnel to it). */
  dnodePort: number | null;
  dnodeAllow: readonly string[];
  /** The SSH server's port once known, for hints to refused DNode clients. */
  sshPort?: () => number | null;
  log?: (line: string) => void;
}

export interface LegacyEndpoints {
  /** The DNode port bound, or null when off. */
  dnodePort: number | null;
  /** For SshServerOptions.onRsync. */
  onRsync: ReturnType<typeof rsyncUploadHandler>;
  /** For SshServerOptions.onTcpForward. */
  onTcpForward: ReturnType<typeof dnodeForwardHandler>;
  close(): Promise<void>;
}

export async function startLegacyEndpoints(o: LegacyEndpointOptions): Promise<LegacyEndpoints> {
  const log = o.log ?? (() => {});
  // One instance shared by both hooks: an upload and a restart's snapshot of the same folder never overlap.
  const uploads = new UploadFolders(o.paths);
  let dnode: DnodeServer | null = null;
  if (o.dnodePort !== null) {
    dnode = await startDnodeServer({
      host: o.dnodeHost, port: o.dnodePort, allow: o.dnodeAllow, maestro: o.maestro, uploads, sshPort: o.sshPort, log,
    });
  }
  return {
    dnodePort: dnode?.port ?? null,
    onRsync: rsyncUploadHandler({ apps: o.maestro.apps, uploads, log }),
    onTcpForward: dnodeForwardHandler(dnode, log),
    close: async () => {
      await dnode?.close();
    },
  };
}
