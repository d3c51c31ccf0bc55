import os from 'node:os';

/**
 * Niceness of deploy work (git receive-pack and its hooks, checkout, npm,
 * release commands). Under load the proxy and the serving apps keep the CPU,
 * and a deploy takes longer instead of slowing every request.
 */
export const DEPLOY_NICENESS = 10;

/** Lowers a just-started deploy process's priority; the processes it starts inherit it. */
export function deprioritize(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    os.setPriority(pid, DEPLOY_NICENESS);
  } catch {
    /* it already exited: nothing left to slow down */
  }
}
