// What Maestro asks Apprunner to run. Apprunner alone decides the final command,
// user, environment and limits of every app process and build step.

import type { Limits } from '../state/types.js';

export type ProcessKind = 'build' | 'release' | 'web' | 'worker';

export interface RunSpec {
  app: string;
  kind: ProcessKind;
  /** argv; a Procfile line is run as ['/bin/sh', '-c', line] inside the app's sandbox. */
  command: string[];
  /** Host path of the release folder; the process's working directory (/app when sandboxed). */
  releaseDir: string;
  /** The app's own variables (PORT, NODE_ENV, config vars). Nothing of the server's environment is added. */
  env: Record<string, string>;
  limits: Limits;
  /** App uid/gid when sandboxed. */
  uid: number | null;
  /** Extra writable folders the step needs (e.g. the npm cache for builds). */
  writable?: string[];
  /** Host folders the step reads but must not change (a previous build, for a node_modules copy), at the same path. */
  readOnly?: string[];
  /** Deploy work (a build step, a new release until it serves): runs below serving traffic. */
  background?: boolean;
  /** The loopback port the platform gave this process to listen on (web): the app's processes may connect to it. */
  port?: number;
  /** The Node runtime (engines.node) to run on: its bin/ first on PATH, mounted read-only. Absent: the server's Node. */
  runtime?: { nodeDir: string };
}

/** What a start-up sweep of a previous run's leftovers did. */
export interface LeftoverSweep {
  /** Processes stopped. */
  killed: number;
  /** Cgroups removed once empty. */
  removedGroups: number;
  /** Cgroups left because `keep` claimed a process in them. */
  keptGroups: number;
}

export type Isolation = 'sandbox' | 'none';
