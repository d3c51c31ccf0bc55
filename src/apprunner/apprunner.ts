import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { deathGuardedArgv } from './death-signal.js';
import { niceDown, type DeployPriority } from './deploy-priority.js';
import { signalQuietly } from './process-tree.js';
import { encodeEnvironment, feedChild, loadEnvironmentArgv } from './env-handoff.js';
import { HELPER_ENV, systemProgram } from './system-programs.js';
import type { Isolation, LeftoverSweep, RunSpec } from './types.js';

/** The fd the unconfined runner hands the app's environment on. */
const ENV_FD = 3;

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
  /**
   * Server start, before anything is spawned: stops every process a previous run of
   * this server on this data folder left behind (what provably is its own) unless
   * `keep` claims it, and removes what held them.
   */
  sweepLeftovers(keep: (pid: number) => boolean): Promise<LeftoverSweep>;
}

/**
 * The environment a process gets: only the app's own variables, never the server's;
 * `dir` (its working directory) is HOME and PWD whatever the config says.
 */
export function appEnvironment(spec: RunSpec, dir: string): Record<string, string> {
  return {
    PATH: spec.runtime ? `${spec.runtime.nodeDir}/bin:${APP_PATH}` : APP_PATH,
    LANG: 'C.UTF-8',
    NODE_ENV: 'production',
    ...spec.env,
    HOME: dir,
    PWD: dir,
  };
}

/** Runs processes as the server's user with no confinement (dev machines, no bubblewrap). */
export class UnconfinedApprunner implements Apprunner {
  readonly isolation: Isolation = 'none';
  private programs?: { setpriv: string; perl: string };

  spawn(spec: RunSpec): ChildProcess {
    // Apps die with the server even on kill -9 (see death-signal.ts); detached gives each
    // process its own group, so a stop reaches npm's children too. The environment goes
    // as in the sandbox: on an fd, to the last step only (see env-handoff.ts).
    this.programs ??= { setpriv: systemProgram('setpriv'), perl: systemProgram('perl') };
    const argv = deathGuardedArgv(this.programs, [], [...loadEnvironmentArgv(this.programs.perl, ENV_FD, null), ...spec.command]);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: spec.releaseDir,
      env: HELPER_ENV,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    feedChild(child, [[ENV_FD, encodeEnvironment(appEnvironment(spec, spec.releaseDir))]]);
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

  /** Without cgroups or own uids nothing on the machine is provably a previous run's: nothing is stopped. */
  async sweepLeftovers(): Promise<LeftoverSweep> {
    return { killed: 0, removedGroups: 0, keptGroups: 0 };
  }
}
