import { spawnSync } from 'node:child_process';
import type { Isolation } from './types.js';

export interface IsolationCheck {
  isolation: Isolation;
  /** Why there is no sandbox, for the one start-up warning. */
  reason: string | null;
}

/** The sandbox needs root (to set up namespaces and switch uids) and a working bubblewrap. */
export function detectIsolation(): IsolationCheck {
  if (process.getuid?.() !== 0) {
    return { isolation: 'none', reason: 'the server is not running as root, so apps cannot get their own users' };
  }
  const probe = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-pid', '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
  if (probe.error || probe.status !== 0) {
    return { isolation: 'none', reason: `bubblewrap ${probe.error ? 'is not installed (apt-get install bubblewrap)' : 'does not work here'}` };
  }
  return { isolation: 'sandbox', reason: null };
}
