import fs from 'node:fs';
import { execa } from 'execa';
import type { DeployPriority } from '../apprunner/deploy-priority.js';
import { helperFailure, type HelperOutcome } from '../helper-failure.js';

/** A checkout is a tar stream from git to tar, seconds for an app; one still going after this is stuck. */
const CHECKOUT_TIMEOUT_MS = 10 * 60_000;

/**
 * Extracts the tree of a commit into a new, empty folder (never in place), with
 * `git archive | tar -x`. gitEnv carries a pre-receive hook's quarantine
 * variables, so objects not yet moved into the repository are found.
 */
export async function checkoutCommit(repo: string, commit: string, dest: string, priority: DeployPriority, gitEnv: Record<string, string> = {}): Promise<void> {
  if (!/^[0-9a-f]{40,64}$/.test(commit)) throw new Error(`not a commit id: '${commit}'`);
  fs.mkdirSync(dest, { recursive: false, mode: 0o755 });
  // The archive streams from git to tar: not collected (buffer), only each one's stderr is.
  const git = execa('git', ['--git-dir', repo, 'archive', '--format=tar', commit], {
    env: gitEnv,
    stdin: 'ignore',
    buffer: { stdout: false },
    reject: false,
    timeout: CHECKOUT_TIMEOUT_MS,
  });
  const tar = execa('tar', ['-x', '-C', dest, '--no-same-owner'], { stdout: 'ignore', reject: false, timeout: CHECKOUT_TIMEOUT_MS });
  priority.background(git.pid);
  priority.background(tar.pid);
  const tarResult = await git.pipe(tar);
  const failed = culprit([tarResult.pipedFrom[0]!, tarResult]);
  if (failed) {
    const what = failed === tarResult ? 'tar' : 'git archive';
    throw new Error(`checkout of ${commit.slice(0, 7)} failed (${what}): ${failure(failed, repo)}`);
  }
}

/**
 * Which end of `git archive | tar` to blame: one that timed out or could not
 * start, else one that exited with a code (git first: a tar fed a broken
 * archive fails too), else one killed (git by SIGPIPE when tar went first).
 */
function culprit(ends: HelperOutcome[]): HelperOutcome | undefined {
  const failed = ends.filter((r) => r.failed);
  const notStarted = (r: HelperOutcome) => r.exitCode === undefined && r.signal === undefined;
  return failed.find((r) => r.timedOut) ?? failed.find(notStarted) ?? failed.find((r) => r.exitCode !== undefined) ?? failed[0];
}

/** helperFailure without the repository's path: that is the server's business, not the pusher's. */
function failure(outcome: HelperOutcome, repo: string): string {
  return helperFailure(outcome).split(repo).join("the app's repository");
}

/** Resolves a revision (branch, tag, sha) of the app's repo to a full commit id. */
export async function resolveRevision(repo: string, rev: string): Promise<string> {
  if (rev.startsWith('-') || /[\s\0]/.test(rev)) throw new Error(`invalid revision '${rev}'`);
  const git = await execa('git', ['--git-dir', repo, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], {
    stdin: 'ignore',
    reject: false,
    timeout: 10_000,
  });
  // git did not run to its end (could not start, timed out): a server problem, not a missing revision.
  if (git.exitCode === undefined) throw new Error(failure(git, repo));
  if (git.exitCode === 0 && git.stdout.trim()) return git.stdout.trim();
  throw new Error(`revision '${rev}' not found in the app's repository: push it first`);
}

/**
 * Puts a branch back to `old` if it still points at `pushed` (a compare-and-swap,
 * so a later push is never undone); an all-zero `old` deletes the branch. True when it moved.
 */
export async function restoreRef(repo: string, ref: string, old: string, pushed: string): Promise<boolean> {
  if (!/^refs\/heads\/[\w./-]+$/.test(ref) || !/^[0-9a-f]{40,64}$/.test(old) || !/^[0-9a-f]{40,64}$/.test(pushed)) return false;
  const args = /^0+$/.test(old) ? ['update-ref', '-d', ref, pushed] : ['update-ref', ref, old, pushed];
  const r = await execa('git', ['--git-dir', repo, ...args], { reject: false, timeout: 10_000 });
  return r.exitCode === 0;
}
