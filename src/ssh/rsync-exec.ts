// Hands an `rsync --server …` exec to the legacy upload handler and ends the
// channel with the status it returns.
import { PassThrough } from 'node:stream';
import type { Caller } from '../control/types.js';
import type { ExecChannel } from './channel-end.js';
import type { SshExecHandler } from './types.js';

export async function runRsyncExec(onRsync: SshExecHandler, argv: string[], caller: Caller, exec: ExecChannel): Promise<void> {
  // A separate stream, as for commands: the handler may read stdin to its end without closing the channel.
  const stdin = new PassThrough();
  exec.channel.pipe(stdin);
  const code = await onRsync({
    argv, caller, stdin, stdout: exec.channel, stderr: exec.channel.stderr, signal: exec.signal,
  });
  exec.channel.unpipe(stdin);
  return exec.finish(code);
}
