import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { execa } from 'execa';
import type { DeployPriority } from '../apprunner/deploy-priority.js';

/**
 * Extracts the tree of a commit into a new, empty folder (never in place), with
 * `git archive | tar -x`. gitEnv carries a pre-receive hook's quarantine
 * variables, so objects not yet moved into the repository are found.
 */
export async function checkoutCommit(repo: string, commit: string, dest: string, priority: DeployPriority, gitEnv: Record<string, string> = {}): Promise<void> {
  if (!/^[0-9a-f]{40,64}$/.test(commit)) throw new Error(`not a commit id: '${commit}'`);
  fs.mkdirSync(dest, { recursive: false, mode: 0o755 });
  const env = { ...process.env, ...gitEnv };
  await new Promise<void>((resolve, reject) => {
    const git = spawn('git', ['--git-dir', repo, 'archive', '--format=tar', commit], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dest, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
    priority.background(git.pid);
    priority.background(tar.pid);
    let errors = '';
    git.stderr.on('data', (d) => (errors += d));
    tar.stderr.on('data', (d) => (errors += d));
    git.stdout.pipe(tar.stdin);
    let pending = 2;
    let failed = false;
    const done = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(new Error(`checkout of ${commit.slice(0, 7)} failed (${what}): ${errors.trim().split('\n')[0] ?? ''}`));
      }
      if (--pending === 0 && !failed) resolve();
    };
    git.on('close', done('git archive'));
    tar.on('close', done('tar'));
    git.on('error', reject);
    tar.on('error', reject);
  });
}

/** Resolves a revision (branch, tag, sha) of the app's repo to a full commit id. */
export function resolveRevision(repo: string, rev: string): Promise<string> {
  if (rev.startsWith('-') || /[\s\0]/.test(rev)) return Promise.reject(new Error(`invalid revision '${rev}'`));
  return new Promise((resolve, reject) => {
    const git = spawn('git', ['--git-dir', repo, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    git.stdout.on('data', (d) => (out += d));
    git.on('error', reject);
    git.on('close', (code) => {
      if (code === 0 && out.trim()) resolve(out.trim());
      else reject(new Error(`revision '${rev}' not found in the app's repository: push it first`));
    });
  });
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
