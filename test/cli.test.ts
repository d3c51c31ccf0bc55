import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, serverSource, waitFor } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform;
const repos: AppRepo[] = [];
beforeAll(async () => {
  px = await Platform.start();
});
afterAll(async () => {
  await px.destroy();
  for (const r of repos) r.remove();
});

describe('the CLI against a running server', () => {
  it('lists and revokes tokens; a revoked token no longer pushes', async () => {
    await px.ok(['apps:create', 'tokened']);
    const secret = (await px.ok(['tokens:create', 'tokened'])).trim();
    expect(secret).toMatch(/^pxt_/);
    const [token] = JSON.parse(await px.ok(['tokens:list', 'tokened', '--json']));
    expect(token.id).toMatch(/^tok_/);
    expect(JSON.stringify(token)).not.toContain(secret);
    expect(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8')).not.toContain(secret);
    const repo = await AppRepo.create(nodeApp('t'));
    repos.push(repo);
    expect((await repo.push(px.gitUrl('tokened', secret))).code).toBe(0);
    const used = JSON.parse(await px.ok(['tokens:list', 'tokened', '--json']))[0];
    expect(used.lastUsed).not.toBeNull();
    await px.ok(['tokens:revoke', 'tokened', token.id]);
    await repo.commit({}, 'again');
    expect((await repo.push(px.gitUrl('tokened', secret))).code).not.toBe(0);
  });

  it('restart and deploy REV replace the process with zero failed requests', async () => {
    const token = await px.createApp('cycled');
    const repo = await AppRepo.create(nodeApp('one'));
    repos.push(repo);
    expect((await repo.push(px.gitUrl('cycled', token))).code).toBe(0);
    const first = (await repo.git(['rev-parse', 'HEAD'])).stdout.trim();
    await repo.commit({ 'server.js': serverSource('two') }, 'two');
    expect((await repo.push(px.gitUrl('cycled', token))).code).toBe(0);

    const traffic = load(px.info.httpPort, 'cycled.localhost', 4);
    const pidBefore = JSON.parse(await px.ok(['ps', 'cycled', '--json']))[0].pid;
    await px.ok(['restart', 'cycled']);
    const pidAfter = JSON.parse(await px.ok(['ps', 'cycled', '--json']))[0].pid;
    expect(pidAfter).not.toBe(pidBefore);
    const deployed = await px.ok(['deploy', 'cycled', first.slice(0, 8)]);
    expect(deployed).toContain('Deployed v3');
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    expect((await get(px.info.httpPort, 'cycled.localhost')).body).toBe('one');
    const bad = await px.cli(['deploy', 'cycled', 'no-such-branch']);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, "error: revision 'no-such-branch' not found in the app's repository: push it first"]);
  });

  it('apps:info and apps:list answer in text and JSON; destroy needs --confirm and removes everything', async () => {
    await px.ok(['apps:create', 'doomed', '--domain', 'doomed.example.org']);
    // The appCreated trigger made its bare repo; a deploy key scoped to it loses the scope with it (appDestroyed).
    expect(fs.existsSync(path.join(px.data, 'apps', 'doomed', 'repo.git', 'HEAD'))).toBe(true);
    const keyFile = path.join(px.data, 'doomed-key');
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dk', '-f', keyFile]).status).toBe(0);
    await px.ok(['apps:create', 'kept']);
    await px.ok(['keys:add', 'dk', '--app', 'doomed', '--app', 'kept', '--file', `${keyFile}.pub`]);
    const scope = () => JSON.parse(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8')).keys.find((k: { name: string }) => k.name === 'dk').apps;
    expect(scope()).toEqual(['doomed', 'kept']);
    const info = JSON.parse(await px.ok(['apps:info', 'doomed', '--json']));
    expect(info.hosts).toEqual(['doomed.example.org', 'doomed.localhost']);
    expect(await px.ok(['apps:info', 'doomed'])).toContain('doomed.example.org');
    expect(JSON.parse(await px.ok(['apps:list', '--json'])).map((a: { name: string }) => a.name)).toContain('doomed');
    const refused = await px.cli(['apps:destroy', 'doomed', '--confirm', 'other']);
    expect(refused.code).toBe(1);
    await px.ok(['apps:destroy', 'doomed', '--confirm', 'doomed']);
    expect(fs.existsSync(path.join(px.data, 'apps', 'doomed'))).toBe(false);
    expect(scope()).toEqual(['kept']);
    expect((await get(px.info.httpPort, 'doomed.example.org')).status).toBe(404);
    // The hostname is free again.
    await px.ok(['apps:create', 'reborn', '--domain', 'doomed.example.org']);
  });

  it('a push whose branch update fails after pre-receive is not switched on, and its process is stopped', async () => {
    const token = await px.createApp('abandoned');
    const repo = await AppRepo.create(nodeApp('before'));
    repos.push(repo);
    expect((await repo.push(px.gitUrl('abandoned', token))).code).toBe(0);
    // A stale lock makes git's ref update fail after the hook passed.
    const lock = path.join(px.data, 'apps', 'abandoned', 'repo.git', 'refs', 'heads', 'main.lock');
    fs.writeFileSync(lock, '');
    await repo.commit({ 'server.js': serverSource('after') }, 'after');
    const push = await repo.push(px.gitUrl('abandoned', token));
    expect(push.code).not.toBe(0);
    await waitFor(async () => {
      const releases = JSON.parse(await px.ok(['releases', 'abandoned', '--json']));
      return releases[0].status === 'failed';
    }, 10_000, 'the prepared release to be discarded');
    expect((await get(px.info.httpPort, 'abandoned.localhost')).body).toBe('before');
    const ps = JSON.parse(await px.ok(['ps', 'abandoned', '--json']));
    expect(ps).toHaveLength(1);
    expect(ps[0].release).toBe('v1');
    fs.rmSync(lock);
    // The deploy lock was released: the same commit deploys on a plain re-push.
    const retry = await repo.push(px.gitUrl('abandoned', token));
    expect(retry.code, retry.stderr).toBe(0);
    expect((await get(px.info.httpPort, 'abandoned.localhost')).body).toBe('after');
  });
});
