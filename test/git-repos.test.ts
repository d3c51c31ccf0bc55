import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createBareRepo, readRef } from '../src/git/repos.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxrepos-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' } }).trim();

it('creates a bare repo on main with the hooks, and reads its refs', async () => {
  const repo = path.join(dir, 'apps', 'one', 'repo.git');
  await createBareRepo(repo, path.join(dir, 'control.sock'));
  expect(git('--git-dir', repo, 'rev-parse', '--is-bare-repository')).toBe('true');
  expect(git('--git-dir', repo, 'symbolic-ref', 'HEAD')).toBe('refs/heads/main');
  for (const hook of ['pre-receive', 'post-receive']) {
    expect(fs.readFileSync(path.join(repo, 'hooks', hook), 'utf8')).toContain(`PLATFORMX_CONTROL_SOCKET='${path.join(dir, 'control.sock')}'`);
  }
  expect(await readRef(repo, 'refs/heads/main')).toBeNull();

  const blob = execFileSync('git', ['--git-dir', repo, 'hash-object', '-w', '--stdin'], { input: 'hello\n', encoding: 'utf8' }).trim();
  const tree = execFileSync('git', ['--git-dir', repo, 'mktree'], { input: `100644 blob ${blob}\thello.txt\n`, encoding: 'utf8' }).trim();
  const commit = execFileSync('git', ['--git-dir', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit-tree', tree, '-m', 'one'], { encoding: 'utf8' }).trim();
  git('--git-dir', repo, 'update-ref', 'refs/heads/main', commit);
  expect(await readRef(repo, 'refs/heads/main')).toBe(commit);
  expect(await readRef(repo, 'refs/heads/other')).toBeNull();
});

it('says which ref and which git command failed', async () => {
  await expect(readRef(path.join(dir, 'missing.git'), 'refs/heads/main')).rejects.toThrow(/^cannot read refs\/heads\/main \(git for-each-ref\): /);
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, '');
  // A file where the repo should be: git init refuses, and says why.
  await expect(createBareRepo(file, '/nowhere')).rejects.toThrow(/^cannot create the repository .*a-file \(git init --bare\): \S/);
});
