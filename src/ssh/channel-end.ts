// Ending an exec channel the way OpenSSH's client expects: output flushed, then
// exit-status, then EOF and close; and never writing to a channel that is gone.
import type { ServerChannel } from 'ssh2';

export interface ExecChannel {
  readonly channel: ServerChannel;
  /** Aborted when the client closes the channel or the connection drops. */
  readonly signal: AbortSignal;
  stdout(text: string | Buffer): void;
  stderr(text: string | Buffer): void;
  /** Flushes output, sends the exit status and closes the channel. Safe to call more than once. */
  finish(code: number): Promise<void>;
}

function flushed(stream: NodeJS.WritableStream & { writable: boolean }, signal: AbortSignal): Promise<void> {
  if (!stream.writable || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    // An empty write completes after every earlier one: the SSH window has taken all output.
    stream.write('', () => done());
  });
}

export function execChannel(channel: ServerChannel, signal: AbortSignal): ExecChannel {
  // A write racing the client's disconnect must not become an uncaught stream error.
  channel.on('error', () => {});
  channel.stderr.on('error', () => {});
  let finished = false;
  const live = () => !finished && !signal.aborted && channel.writable;
  return {
    channel,
    signal,
    stdout: (text) => {
      if (live()) channel.write(text);
    },
    stderr: (text) => {
      if (live() && channel.stderr.writable) channel.stderr.write(text);
    },
    finish: async (code) => {
      if (finished) return;
      finished = true;
      await Promise.all([flushed(channel, signal), flushed(channel.stderr, signal)]);
      if (signal.aborted) return;
      channel.exit(code);
      channel.end();
    },
  };
}

/** Writes a one-line refusal on stderr and ends with status 1. `terminal`: the client's tty is raw, so end the line with CR LF. */
export async function refuse(exec: ExecChannel, reason: string, terminal = false): Promise<void> {
  exec.stderr(`platformx: ${reason}${terminal ? '\r\n' : '\n'}`);
  await exec.finish(1);
}
