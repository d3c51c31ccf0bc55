import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp } from './support/apps.js';
import { Platform, run } from './support/platform.js';

let px: Platform;
let keys: string;
const repos: AppRepo[] = [];
const sshOpts = (key: string) => ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes',
  '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', key];
const ssh = (key: string, ...command: string[]) => run('ssh', [...sshOpts(key), '-p', String(px.info.sshPort), 'git@127.0.0.1', ...command]);
const gitSsh = (key: string) => ({ ...process.env, GIT_SSH_COMMAND: `ssh ${sshOpts(key).join(' ')}` });

async function newKey(name: string): Promise<string> {
  const file = path.join(keys, name);
  const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  expect(r.code).toBe(0);
  return file;
}

beforeAll(async () => {
  px = await Platform.start(['--ssh-port', '0']);
  keys = fs.mkdtempSync(path.join(os.tmpdir(), 'pxk-'));
});
afterAll(async () => {
  await px.destroy();
  fs.rmSync(keys, { recursive: true, force: true });
  for (const r of repos) r.remove();
});

describe('SSH remote on the running server', () => {
  it('a key scoped to hello pushes with live output; other apps and admin commands are refused', async () => {
    await px.ok(['apps:create', 'hello']);
    await px.ok(['apps:create', 'other']);
    const key = await newKey('me');
    const added = await px.ok(['keys:add', 'me', '--app', 'hello', '--file', `${key}.pub`]);
    expect(added).toContain('Added key me');
    const repo = await AppRepo.create(nodeApp('over ssh'));
    repos.push(repo);
    const url = `ssh://git@127.0.0.1:${px.info.sshPort}/hello.git`;
    const push = await run('git', ['push', url, 'main'], { cwd: repo.dir, env: gitSsh(key) });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toMatch(/remote: -----> Starting web\.1/);
    expect((await get(px.info.httpPort, 'hello.localhost')).body).toBe('over ssh');
    const releases = JSON.parse(await px.ok(['releases', 'hello', '--json']));
    expect(releases[0].by).toBe('me');

    const other = await run('git', ['push', `ssh://git@127.0.0.1:${px.info.sshPort}/other.git`, 'main'], { cwd: repo.dir, env: gitSsh(key) });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("app 'other' does not exist");

    const ps = await ssh(key, 'ps', 'hello');
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toContain('web.1');
    const create = await ssh(key, 'apps:create', 'x');
    expect(create.code).not.toBe(0);
    expect(create.stderr).toContain('needs an admin key');
    expect((await px.cli(['apps:info', 'x'])).code).toBe(1);
  });

  it('admin commands over SSH print what the local CLI prints', async () => {
    const admin = await newKey('admin');
    await px.ok(['keys:add', 'root', '--admin'], fs.readFileSync(`${admin}.pub`, 'utf8'));
    for (const command of [['apps:list'], ['apps:info', 'hello'], ['releases', 'hello', '--json']]) {
      const local = await px.cli(command);
      const remote = await ssh(admin, ...command);
      expect(remote.code).toBe(local.code);
      expect(remote.stdout).toBe(local.stdout);
    }
    const bad = await ssh(admin, 'apps:info', 'ghost');
    const badLocal = await px.cli(['apps:info', 'ghost']);
    expect([bad.code, bad.stderr]).toEqual([badLocal.code, badLocal.stderr]);
    const info = await px.ok(['server:info', '--json']);
    expect(JSON.parse(info).sshFingerprint).toMatch(/^SHA256:/);
  });
});
