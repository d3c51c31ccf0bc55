// How a helper process the server runs outside the app sandbox (git, tar, npm)
// is described when it fails: one line naming the command, how it ended and the
// end of its stderr, so a failed checkout or install can be diagnosed from the
// log without running it again.
import type { Result } from 'execa';

/** The parts of an execa result (run with `reject: false`) a failure is told from. */
export type HelperOutcome = Pick<Result, 'failed' | 'command' | 'exitCode' | 'signal' | 'timedOut' | 'durationMs' | 'originalMessage' | 'shortMessage'> & {
  stderr?: unknown;
};

/** The last `lines` non-empty lines of a stderr, joined into one line. */
export function stderrTail(stderr: unknown, lines = 3): string {
  return String(stderr ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' ');
}

/** Why a helper failed, in one line: "COMMAND exited with code N: STDERR TAIL" (or timed out, was killed, could not start). */
export function helperFailure(outcome: HelperOutcome, lines = 3): string {
  const tail = stderrTail(outcome.stderr, lines);
  return `${outcome.command} ${howItEnded(outcome)}${tail ? `: ${tail}` : ''}`;
}

function howItEnded(o: HelperOutcome): string {
  if (o.timedOut) return `ran longer than ${Math.round(o.durationMs / 1000)} s and was stopped`;
  // Exit code 0 yet failed: one of its streams broke (or its output overflowed).
  if (o.exitCode === 0) return `failed (${o.originalMessage ?? o.shortMessage})`;
  if (o.exitCode !== undefined) return `exited with code ${o.exitCode}`;
  if (o.signal !== undefined) return `was killed by ${o.signal}`;
  return `could not start (${o.originalMessage ?? o.shortMessage})`;
}
