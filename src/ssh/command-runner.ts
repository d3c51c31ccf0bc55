// Runs a platformx command received over SSH through the same dispatcher as the
// local CLI: same output, same exit codes, scoped by the key's caller.
import type { Caller, Dispatch } from '../control/types.js';
import type { ExecChannel } from './channel-end.js';

export async function runDispatchedCommand(dispatch: Dispatch, argv: string[], caller: Caller, exec: ExecChannel): Promise<number> {
  let code: number;
  try {
    code = await dispatch(argv, caller, {
      stdout: (t) => exec.stdout(t),
      stderr: (t) => exec.stderr(t),
      stdin: exec.channel,
      // Aborted when the client disconnects: ends `logs -f` and anything else that waits.
      signal: exec.signal,
    });
  } catch (err) {
    exec.stderr(`platformx: internal error in '${argv[0]}': ${(err as Error).message}\n`);
    code = 2;
  }
  await exec.finish(code);
  return code;
}
