// A helper process the server runs outside the sandbox (tar, git archive | tar,
// git rev-parse) that fails says which command, how it ended and what it wrote
// to stderr; a checkout's message keeps the repository's path to the server.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { helperFailure } from '../src/helper-failure.js';
import { checkoutCommit, resolveRevision } from '../src/maestro/checkout.js';
import { TarballError, unpack } from '../src/runtimes/tarball.js';

describe('helperFailure', () => {
  it('names the command, its exit code and the end of its stderr', async () => {
    const r = await execa('sh', ['-c', 'echo one >&2; echo two >&2; echo three >&2; echo four >&2; exit 3'], { reject: false });
    expect(helperFailure(r)).toBe('sh -c echo one >&2; echo two >&2; echo three >&2; echo four >&2; exit 3 exited with code 3: two three four');
  });

  it('says when it timed out, and when it could not start', async () => {
    const slow = await execa('sleep', ['5'], { reject: false, timeout: 200 });
    expect(helperFailure(slow)).toMatch(/^sleep 5 ran longer than 0 s and was stopped$/);
    const missing = await execa('no-such-helper-program', ['x'], { reject: false });
    expect(helperFailure(missing)).toBe('no-such-helper-program x could not start (spawn no-such-helper-program ENOENT)');
  });
});

describe('helpers that fail', () => {
  let tmp: string;
  let repo: string;
  let commit: string;
  const priority = { background: () => {} };

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'px-helper-failure-'));
    const work = path.join(tmp, 'work');
    fs.mkdirSync(work);
    const git = (args: string[], cwd = work) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
    git(['init', '-q', '-b', 'main']);
    fs.writeFileSync(path.join(work, 'server.js'), 'console.log(1)\n');
    git(['add', '.']);
    git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'one']);
    commit = git(['rev-parse', 'HEAD']);
    repo = path.join(tmp, 'app.git');
    git(['clone', '-q', '--bare', work, repo], tmp);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a checkout extracts the commit, and one of a commit the repository lacks names git archive and its reason, not the path', async () => {
    const ok = path.join(tmp, 'ok');
    await checkoutCommit(repo, commit, ok, priority);
    expect(fs.readFileSync(path.join(ok, 'server.js'), 'utf8')).toBe('console.log(1)\n');

    const missing = 'f'.repeat(40);
    const err = await checkoutCommit(repo, missing, path.join(tmp, 'missing'), priority).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/^checkout of fffffff failed \(git archive\): git --git-dir the app's repository archive --format=tar f{40} exited with code 128: fatal: /);
    expect(message).not.toContain(repo);
  });

  it('a revision the repository lacks is reported as not found', async () => {
    expect(await resolveRevision(repo, 'main')).toBe(commit);
    await expect(resolveRevision(repo, 'no-such-branch')).rejects.toThrow("revision 'no-such-branch' not found in the app's repository: push it first");
  });

  it('a tarball tar cannot read is unpack-failed, with tar\'s command, exit code and reason', async () => {
    const file = path.join(tmp, 'broken.tgz');
    fs.writeFileSync(file, 'not a tarball');
    const err = await unpack('node@1.0.0', file, path.join(tmp, 'unpacked')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TarballError);
    expect((err as TarballError).code).toBe('unpack-failed');
    expect((err as TarballError).message).toMatch(/^node@1\.0\.0: could not unpack \(tar -x -z -f \S+broken\.tgz .* exited with code 2: .*gzip/);
  });
});
