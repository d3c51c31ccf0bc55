import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { niceDown, type DeployPriority } from './deploy-priority.js';
import { signalQuietly } from './process-tree.js';
import type { Isolation, RunSpec } from './types.js';

/** PATH inside an app process: the server's own node first, then the system's. */
export const APP_PATH = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');

/**
 * The one place that starts app processes and build steps. It decides the final
 * command, environment and user; Maestro only says what to run.
 */
export interface Apprunner extends DeployPriority {
  readonly isolation: Isolation;
  /** Starts a process; with `spec.background` below serving traffic until foreground(). */
  spawn(spec: RunSpec): ChildProcess;
  /** A process started in the background passed its checks and is about to serve. */
  foreground(pid: number): void;
  /** Gives a folder the app's processes must write (a new release, its cache) to the app's user. */
  claim(dir: string, uid: number | null): Promise<void>;
  /** Signals a process it spawned and everything it started. */
  signal(pid: number, signal: NodeJS.Signals): void;
  /** The app is gone: drop what the runner kept for it. */
  forget(app: string): void;
  /** The server stops, its apps already stopped: drop what the runner kept for all. */
  close(): void;
}

/** The environment a process gets: only the app's own variables, never the server's. */
export function appEnvironment(spec: RunSpec, home: string): Record<string, string> {
  return {
    PATH: spec.runtime ? `${spec.runtime.nodeDir}/bin:${APP_PATH}` : APP_PATH,
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
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...spec.command], {
      cwd: spec.releaseDir,
      env: appEnvironment(spec, spec.releaseDir),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // Without root a niceness cannot be raised back, so only steps that end are lowered.
    if (spec.background && (spec.kind === 'build' || spec.kind === 'release')) niceDown(child.pid);
    return child;
  }

  foreground(): void {
    /* web and worker processes were never lowered */
  }

  background(pid: number | undefined): void {
    niceDown(pid);
  }

  /** Each process leads its own group (detached), so the group holds the app and its children. */
  signal(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(-pid, signal);
    } catch {
      signalQuietly(pid, signal);
    }
  }

  async claim(): Promise<void> {
    /* everything runs as the server's user */
  }

  forget(): void {
    /* nothing kept */
  }

  close(): void {
    /* nothing kept */
  }
}
