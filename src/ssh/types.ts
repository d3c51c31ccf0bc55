// The SSH server's extension points, used by the legacy component (rsync uploads
// and DNode tunnelling). Without a handler the request is refused.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Caller } from '../control/types.js';

export interface SshExecContext {
  /** The exec string split into words (no shell), e.g. ['rsync', '--server', …]. */
  argv: string[];
  /** Who authenticated: the key's name and scope. */
  caller: Caller;
  stdin: Readable;
  /** The channel: write to it (pipe with { end: false }); the server ends it with your exit code. */
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Handles an `rsync --server …` exec; resolves to the exit status sent to the client. */
export type SshExecHandler = (ctx: SshExecContext) => Promise<number>;

export interface SshTcpForwardRequest {
  caller: Caller;
  /** Where the client asked to connect (ssh -L …:destHost:destPort). */
  destHost: string;
  destPort: number;
  srcHost: string;
  srcPort: number;
}

/**
 * Decides a direct-tcpip (ssh -L) request: call `accept()` to get the channel
 * stream and connect it yourself, or `reject()`. Call exactly one, once.
 */
export type SshTcpForwardHandler = (req: SshTcpForwardRequest, accept: () => Duplex, reject: () => void) => void;
