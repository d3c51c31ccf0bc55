import os from 'node:os';

/**
 * Deploy work (git receive-pack and its hooks, checkout, npm, release commands,
 * a new release until it takes traffic) runs below serving traffic: under load
 * the proxy and the serving apps keep the CPU, and a deploy takes longer instead
 * of slowing every request.
 */
export interface DeployPriority {
  /** Moves a deploy helper the server started itself below serving traffic; what it starts inherits it. */
  background(pid: number | undefined): void;
}

/** Niceness of deploy work where no cpu cgroup is at hand. */
export const DEPLOY_NICENESS = 10;

export function niceDown(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    os.setPriority(pid, DEPLOY_NICENESS);
  } catch {
    /* it already exited: nothing left to slow down */
  }
}
