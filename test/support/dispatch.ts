import { Readable } from 'node:stream';
import type { Caller, Dispatch } from '../../src/control/types.js';
import type { RunResult } from './platform.js';

/** Runs a platformx command through a dispatcher in-process, as `caller`, and captures what it prints. */
export async function dispatchCaptured(dispatch: Dispatch, argv: string[], caller: Caller, stdin?: string): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await dispatch(argv, caller, {
    stdout: (t) => (stdout += t), stderr: (t) => (stderr += t),
    stdin: stdin === undefined ? undefined : Readable.from([stdin]), signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}
