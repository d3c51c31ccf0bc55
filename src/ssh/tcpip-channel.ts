// A direct-tcpip channel (ssh -L): decided by the legacy forward handler, or
// refused when there is none. An open forward counts as work for the idle timeout.
import type { AcceptConnection, RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { ConnectionState } from './connection-state.js';
import type { SshTcpForwardHandler } from './types.js';

export function openTcpForward(
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
  conn: ConnectionState,
  onTcpForward: SshTcpForwardHandler | undefined,
  log: (line: string) => void,
): void {
  const caller = conn.channelCaller();
  if (!caller || !onTcpForward) return reject();
  let decided = false;
  const release = conn.openChannel();
  const refuse = () => {
    decided = true;
    reject();
    release();
  };
  try {
    onTcpForward(
      { caller, destHost: info.destIP, destPort: info.destPort, srcHost: info.srcIP, srcPort: info.srcPort },
      () => {
        if (decided) throw new Error('tcp forward already decided');
        decided = true;
        const channel = accept();
        conn.workStarted();
        channel.on('error', () => {});
        channel.once('close', () => {
          release();
          conn.workEnded();
        });
        return channel;
      },
      () => {
        if (!decided) refuse();
      },
    );
  } catch (err) {
    log(`tcp forward handler failed: ${(err as Error).message}`);
    if (!decided) refuse();
  }
}
