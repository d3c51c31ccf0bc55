// Who is asking, and where their output goes. The same dispatcher serves the
// local CLI (control socket), SSH exec commands and the git hooks.

import type { Readable } from 'node:stream';

export interface Caller {
  /** 'local' = the control socket (root on this machine); 'key' = an SSH deploy key; 'token' = an HTTP deploy token. */
  kind: 'local' | 'key' | 'token';
  /** Key name, token id, or 'local'; recorded as "by" on releases. */
  name: string;
  admin: boolean;
  /** Apps a non-admin caller may reach. */
  apps: readonly string[];
}

export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin?: Readable;
  /** Aborted when the client goes away (ends logs -f, for instance). */
  signal: AbortSignal;
}

/** Runs one CLI command (argv without the program name) and resolves to its exit code. */
export type Dispatch = (argv: string[], caller: Caller, io: CommandIO) => Promise<number>;

export function canReach(caller: Caller, app: string): boolean {
  return caller.admin || caller.apps.includes(app);
}
