import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform;
const repos: AppRepo[] = [];
async function appRepo(files: Record<string, string>) {
  const r = await AppRepo.create(files);
  repos.push(r);
  return r;
}

beforeAll(async () => {
  px = await Platform.start();
});
afterAll(async () => {
  await px.destroy();
  for (const r of repos) r.remove();
});

describe('git push over HTTP deploys through the restart pipeline', () => {
  it('deploys, then a second push switches the body with no failed request under load', async () => {
    const token = await px.createApp('hello');
    const repo = await appRepo(nodeApp('hello v1'));
    const first = await repo.push(px.gitUrl('hello', token));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('-----> ');
    expect(first.stderr).toContain('Released v1');
    expect((await get(px.info.httpPort, 'hello.localhost')).body).toBe('hello v1');

    const traffic = load(px.info.httpPort, 'hello.localhost', 4);
    await new Promise((r) => setTimeout(r, 300));
    await repo.commit({ 'server.js': serverSource('hello v2') }, 'v2');
    const second = await repo.push(px.gitUrl('hello', token));
    await new Promise((r) => setTimeout(r, 300));
    await traffic.stop();
    expect(second.code, second.stderr).toBe(0);
    expect(traffic.failures).toEqual([]);
    expect(traffic.bodies.get('hello v1')).toBeGreaterThan(0);
    expect(traffic.bodies.get('hello v2')).toBeGreaterThan(0);
    expect((await get(px.info.httpPort, 'HELLO.localhost:8000')).body).toBe('hello v2');

    const ps = JSON.parse(await px.ok(['ps', 'hello', '--json']));
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ process: 'web.1', release: 'v2', state: 'up' });
  });

  it('rejects a push whose npm install fails, and the old release keeps serving', async () => {
    const token = await px.createApp('broken');
    const repo = await appRepo(nodeApp('good'));
    expect((await repo.push(px.gitUrl('broken', token))).code).toBe(0);
    await repo.commit({
      'package.json': JSON.stringify({ name: 'app', scripts: { start: 'node server.js' }, dependencies: { missing: 'file:./no-such-package.tgz' } }),
      'server.js': serverSource('bad'),
    }, 'broken deps');
    const push = await repo.push(px.gitUrl('broken', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('Push rejected: npm install failed');
    expect((await get(px.info.httpPort, 'broken.localhost')).body).toBe('good');
    const releases = px.releases('broken');
    expect(releases.map((r: { status: string }) => r.status)).toEqual(['succeeded', 'failed']);
    // The failed release's folder is gone; the good one stays.
    expect(fs.existsSync(path.join(px.data, 'apps', 'broken', 'releases', 'v2'))).toBe(false);
    expect(fs.existsSync(path.join(px.data, 'apps', 'broken', 'releases', 'v1'))).toBe(true);
  });

  it('rejects a push whose health check fails; a re-push of a fixed commit deploys', async () => {
    const token = await px.createApp('sick');
    const repo = await appRepo(nodeApp('healthy'));
    expect((await repo.push(px.gitUrl('sick', token))).code).toBe(0);
    await repo.commit({
      'server.js': `require('http').createServer((q, s) => { s.statusCode = 500; s.end('boom'); }).listen(process.env.PORT);`,
      'app.json': JSON.stringify({ healthchecks: { web: [{ type: 'startup', path: '/', attempts: 2, wait: 0.2 }] } }),
    }, 'sick');
    const push = await repo.push(px.gitUrl('sick', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('health check failed after 2 attempts');
    expect((await get(px.info.httpPort, 'sick.localhost')).body).toBe('healthy');
    // The rejected commit never reached the branch.
    const remoteHead = await repo.git(['ls-remote', px.gitUrl('sick', token), 'refs/heads/main']);
    const local = (await repo.git(['rev-parse', 'HEAD~1'])).stdout.trim();
    expect(remoteHead.stdout.split('\t')[0]).toBe(local);
  });

  it('refuses wrong, missing and other apps\' tokens, and unknown apps, writing nothing', async () => {
    const tokenA = await px.createApp('owner-a');
    const tokenB = await px.createApp('owner-b');
    const repo = await appRepo(nodeApp('x'));
    for (const url of [
      `http://x:wrong@127.0.0.1:${px.info.gitHttpPort}/owner-a.git`,
      `http://127.0.0.1:${px.info.gitHttpPort}/owner-a.git`,
      px.gitUrl('owner-a', tokenB),
    ]) {
      const r = await repo.push(url);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/401|Authentication failed|could not read Username/);
    }
    const unknown = await repo.push(px.gitUrl('nosuchapp', tokenA));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/not found|404/);
    expect(fs.existsSync(path.join(px.data, 'apps', 'nosuchapp'))).toBe(false);
    const refs = fs.readdirSync(path.join(px.data, 'apps', 'owner-a', 'repo.git', 'refs', 'heads'));
    expect(refs).toEqual([]);
  });

  it('an unauthenticated POST to git-receive-pack is refused and writes nothing', async () => {
    await px.createApp('posted');
    const objects = path.join(px.data, 'apps', 'posted', 'repo.git', 'objects');
    const before = fs.readdirSync(objects).sort();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: px.info.gitHttpPort, method: 'POST', path: '/posted.git/git-receive-pack',
        headers: { 'content-type': 'application/x-git-receive-pack-request' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end(`0000000000000000000000000000000000000000 ${'1'.repeat(40)} refs/heads/main\0 report-status\n0000PACK`);
    });
    expect(status).toBe(401);
    expect(fs.readdirSync(objects).sort()).toEqual(before);
    expect(fs.readdirSync(path.join(objects, '..', 'refs', 'heads'))).toEqual([]);
  });

  it('serializes two concurrent pushes of one app: both land, one after the other', async () => {
    const token = await px.createApp('busy');
    const a = await appRepo(nodeApp('from a'));
    const b = await appRepo(nodeApp('from b'));
    const [ra, rb] = await Promise.all([a.push(px.gitUrl('busy', token), 'main'), b.push(px.gitUrl('busy', token), 'main:master')]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(`${ra.stderr}${rb.stderr}`).toContain('waiting for it to finish');
    const state = JSON.parse(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8')).apps.busy;
    const releases = px.releases('busy');
    expect(releases.map((r: { status: string }) => r.status)).toEqual(['succeeded', 'succeeded']);
    const body = (await get(px.info.httpPort, 'busy.localhost')).body;
    expect(body).toBe(state.current === 2 && releases[1]!.commit === (await b.git(['rev-parse', 'HEAD'])).stdout.trim() ? 'from b' : 'from a');
  });

  it('stores other branches without deploying them', async () => {
    const token = await px.createApp('branches');
    const repo = await appRepo(nodeApp('main body'));
    const r = await repo.push(px.gitUrl('branches', token), 'main:feature');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('branch feature stored, not deployed');
    expect((await get(px.info.httpPort, 'branches.localhost')).status).toBe(503);
  });
});

describe('files a push controls', () => {
  it('a package.json that is a symlink to /dev/zero is refused at once; the server keeps serving', async () => {
    const token = await px.createApp('planted');
    const repo = await appRepo({ 'server.js': serverSource('x') });
    fs.symlinkSync('/dev/zero', path.join(repo.dir, 'package.json'));
    fs.symlinkSync('/etc/shadow', path.join(repo.dir, 'Procfile'));
    await repo.commit({}, 'planted links');
    const push = await repo.push(px.gitUrl('planted', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('Push rejected');
    expect(push.stderr).not.toMatch(/root:/);
    expect((await get(px.info.httpPort, 'nowhere.test', '/_ping_')).body).toBe('pong');
  });
});

describe('domains and the proxy', () => {
  it('routes added domains case-insensitively; unknown hosts get 404 and /_ping_ gets pong', async () => {
    const token = await px.createApp('site');
    const repo = await appRepo(nodeApp('site body'));
    expect((await repo.push(px.gitUrl('site', token))).code).toBe(0);
    await px.ok(['domains:add', 'site', 'WWW.Example.COM']);
    expect((await get(px.info.httpPort, 'www.example.com:80')).body).toBe('site body');
    const taken = await px.cli(['domains:add', 'hello', 'www.example.com']);
    expect(taken.code).toBe(1);
    expect(taken.stderr.trim()).toBe("error: hostname 'www.example.com' already belongs to app 'site'");
    await px.ok(['domains:remove', 'site', 'www.example.com']);
    const gone = await get(px.info.httpPort, 'www.example.com');
    expect(gone.status).toBe(404);
    expect(gone.body).toBe("host 'www.example.com' not found on this server.");
    const ping = await get(px.info.httpPort, 'nowhere.test', '/_ping_');
    expect([ping.status, ping.body]).toEqual([200, 'pong']);
  });
});

describe('CLI input checks', () => {
  it('refuses bad names and unknown apps with one line and exit 1, changing nothing', async () => {
    const before = fs.readFileSync(path.join(px.data, 'state.json'), 'utf8');
    for (const [args, message] of [
      [['apps:create', 'Bad_Name'], "error: invalid app name 'Bad_Name'"],
      [['apps:info', 'ghost'], "error: app 'ghost' does not exist"],
      [['apps:create', 'dup', '--domain', 'not a host'], "error: invalid hostname 'not a host'"],
      [['apps:destroy', 'hello'], 'error: destroying'],
      [['nosuch:command'], "error: unknown command 'nosuch:command'"],
    ] as const) {
      const r = await px.cli([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
    }
    expect(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8')).toBe(before);
  });
});
