import { spawnSync } from 'node:child_process';
import { findProgram, HELPER_ENV } from './system-programs.js';
import type { Isolation } from './types.js';

export interface IsolationCheck {
  isolation: Isolation;
  /** Why there is no sandbox, for the one start-up warning. */
  reason: string | null;
}

/** What the sandbox's start chain runs (see SandboxedApprunner), with the Debian package of each. */
const NEEDED = [['setpriv', 'util-linux'], ['prlimit', 'util-linux'], ['perl', 'perl-base']] as const;

/** The sandbox needs root (to set up namespaces and switch uids), a working bubblewrap and a few system tools. */
export function detectIsolation(): IsolationCheck {
  if (process.getuid?.() !== 0) {
    return { isolation: 'none', reason: 'the server is not running as root, so apps cannot get their own users' };
  }
  const bwrap = findProgram('bwrap');
  if (!bwrap) return { isolation: 'none', reason: 'bubblewrap is not installed (apt-get install bubblewrap)' };
  const probe = spawnSync(bwrap, ['--ro-bind', '/', '/', '--unshare-pid', '--', 'true'], { stdio: 'ignore', timeout: 10_000, env: HELPER_ENV });
  if (probe.error || probe.status !== 0) return { isolation: 'none', reason: 'bubblewrap does not work here' };
  for (const [name, pkg] of NEEDED) {
    if (!findProgram(name)) return { isolation: 'none', reason: `${name} is not installed (apt-get install ${pkg})` };
  }
  return { isolation: 'sandbox', reason: null };
}
