import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { simpleGit, type SimpleGit } from 'simple-git';
import { writeFileAtomic } from '../state/atomic-file.js';

/** The project's hooks/ folder: the hooks every app repo runs. */
export const HOOKS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'hooks');
const HOOKS = ['pre-receive', 'post-receive'];
/** A plumbing command that prints nothing for this long is stuck (a lock, a hung filesystem): it is stopped. */
const PLUMBING_TIMEOUT_MS = 30_000;

/** git for the server's own plumbing on its bare repos: no shell, the server's environment, stopped when stuck. */
function plumbing(baseDir: string): SimpleGit {
  return simpleGit({ baseDir, timeout: { block: PLUMBING_TIMEOUT_MS } });
}

/** Creates an app's bare repository (apps:create is the only way a repo comes to be). */
export async function createBareRepo(repo: string, controlSocket: string): Promise<void> {
  const parent = path.dirname(repo);
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  try {
    // git init --bare --quiet --initial-branch=main REPO
    await plumbing(parent).init(true, ['--quiet', '--initial-branch=main', repo]);
  } catch (err) {
    throw new Error(`cannot create the repository ${repo} (git init --bare): ${(err as Error).message.trim()}`);
  }
  installHooks(repo, controlSocket);
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Writes small wrappers into the repo that exec the project's hooks with this
 * server's node and control socket. exec keeps the pid, so the hook's parent is
 * the git-receive-pack process the server spawned and can attribute the push to.
 * Rewritten at every start, so a moved install or a new node stays in effect.
 */
export function installHooks(repo: string, controlSocket: string): void {
  for (const hook of HOOKS) {
    const wrapper = [
      '#!/bin/sh',
      // The hook makes no TLS connection and needs none of the server's node flags;
      // an inherited NODE_EXTRA_CA_CERTS alone adds ~30 ms to each hook's start.
      'unset NODE_OPTIONS NODE_EXTRA_CA_CERTS',
      `PLATFORMX_CONTROL_SOCKET=${shQuote(controlSocket)} exec ${shQuote(process.execPath)} ${shQuote(path.join(HOOKS_DIR, hook))}`,
      '',
    ].join('\n');
    const file = path.join(repo, 'hooks', hook);
    // Unchanged wrappers are left alone: a boot with many apps costs no fsync each.
    if (readIfExists(file) !== wrapper) writeFileAtomic(file, wrapper, 0o755);
  }
}

/** The commit a ref of a bare repo points at now, or null when it does not exist. */
export async function readRef(repo: string, ref: string): Promise<string | null> {
  try {
    // for-each-ref prints nothing for a missing ref, so an exit code never has to be told apart from a failure.
    const out = await plumbing(repo).raw(['--git-dir', repo, 'for-each-ref', '--format=%(objectname)', ref]);
    return out.trim().split('\n')[0] || null;
  } catch (err) {
    throw new Error(`cannot read ${ref} (git for-each-ref): ${(err as Error).message.trim()}`);
  }
}

function readIfExists(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
