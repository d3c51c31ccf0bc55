import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Isolation, RunSpec } from './types.js';

/** PATH inside an app process: the server's own node first, then the system's. */
export const APP_PATH = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

/**
 * The one place that starts app processes and build steps. It decides the final
 * command, environment and user; Maestro only says what to run.
 */
export interface Apprunner {
  readonly isolation: Isolation;
  spawn(spec: RunSpec): ChildProcess;
}

/** The environment a process gets: only the app's own variables, never the server's. */
export function appEnvironment(spec: RunSpec, home: string): Record<string, string> {
  return {
    PATH: APP_PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    NODE_ENV: 'production',
    ...spec.env,
  };
}

/** Runs processes as the server's user with no confinement (dev machines, no bubblewrap). */
export class UnconfinedApprunner implements Apprunner {
  readonly isolation: Isolation = 'none';

  spawn(spec: RunSpec): ChildProcess {
    // setpriv execs the command with PDEATHSIG so apps die with the server even on
    // kill -9; detached gives each process its own group, so a stop reaches npm's children too.
    return spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...spec.command], {
      cwd: spec.releaseDir,
      env: appEnvironment(spec, spec.releaseDir),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  }
}
