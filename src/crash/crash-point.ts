// Named places where a test can have the server kill itself with SIGKILL, to
// check what a crash at exactly that step leaves behind (issue: crash
// consistency). PLATFORMX_CRASH_AT names one point; unset, each call is one
// string comparison.

export type CrashPointName =
  /** A release was written as current (state on disk), before old builds are pruned. */
  | 'release-succeeded'
  /** The new release took the traffic, before the state says so. */
  | 'release-switched'
  /** An old build was moved aside for deletion, before its files are removed. */
  | 'build-moved-aside'
  /** pre-receive passed and git updated the ref, before post-receive promotes. */
  | 'post-receive'
  /** The data plane spawned an app process, before it recorded it (the data plane dies here). */
  | 'process-spawned'
  /** During start-up, after the first app was started again. */
  | 'boot-first-app';

const AT = process.env.PLATFORMX_CRASH_AT ?? '';

export function crashPoint(name: CrashPointName): void {
  if (AT === name) process.kill(process.pid, 'SIGKILL');
}
