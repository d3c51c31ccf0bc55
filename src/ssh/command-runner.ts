// Runs a platformx command received over SSH through the same dispatcher as the
// local CLI: same output, same exit codes, scoped by the key's caller.
import { PassThrough } from 'node:stream';
import type { Caller, Dispatch } from '../control/types.js';
import type { ExecChannel } from './channel-end.js';

export async function runDispatchedCommand(dispatch: Dispatch, argv: string[], caller: Caller, exec: ExecChannel): Promise<number> {
  // A separate stream: a reader that iterates stdin to its end destroys it, which must not close the channel.
  const stdin = new PassThrough();
  exec.channel.pipe(stdin);
  let code: number;
  try {
    code = await dispatch(argv, caller, {
      stdout: (t) => exec.stdout(t),
      stderr: (t) => exec.stderr(t),
      stdin,
      // Aborted when the client disconnects: ends `logs -f` and anything else that waits.
      signal: exec.signal,
    });
  } catch (err) {
    exec.stderr(`platformx: internal error in '${argv[0]}': ${(err as Error).message}\n`);
    code = 2;
  }
  exec.channel.unpipe(stdin);
  await exec.finish(code);
  return code;
}
