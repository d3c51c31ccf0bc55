// Installing runtimes from a registry: resolution of engines.node, the sha512
// check, a registry that is down, read-only runtimes and prune. A loopback
// registry serves small Node packages whose bin/node hands over to the
// server's own node, so nothing here downloads a real release.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { installKey } from '../src/maestro/install-reuse.js';
import { chooseNode, describeLines, enginesNode, npmFor } from '../src/runtimes/node-range.js';
import { RuntimeStore } from '../src/runtimes/runtime-store.js';
import { AppRepo, get } from './support/apps.js';
import { Platform } from './support/platform.js';
import { FakeRegistry } from './support/runtimes.js';

describe('engines.node resolution', () => {
  const served = ['16.20.2', '18.19.0', '18.20.8', '20.19.0', '22.23.5', '24.0.0-rc.1', 'banana'];

  it('takes the highest release that satisfies the range, never a pre-release', () => {
    expect(chooseNode('18.x.x', served, []).version).toBe('18.20.8');
    expect(chooseNode('>=20 <23', served, []).version).toBe('22.23.5');
    expect(chooseNode('>=22', served, []).version).toBe('22.23.5');
    expect(chooseNode('^18.19.0', served, ['18.19.0']).version).toBe('18.20.8');
  });

  it('refuses a range nothing satisfies, naming engines.node, the range and what there is', () => {
    expect(() => chooseNode('99.x', served, [])).toThrow('engines.node "99.x" matches no Node release the registry serves; available: 22.23.5, 20.19.0, 18.20.8, 16.20.2');
  });

  it('without the registry, takes an installed version or says why it cannot', () => {
    const down = { unreachable: 'the registry http://r/ cannot be reached (ECONNREFUSED)' };
    expect(chooseNode('18', down, ['22.23.5', '18.19.0'])).toEqual({ version: '18.19.0', offline: down.unreachable });
    expect(() => chooseNode('20.x', down, ['18.19.0'])).toThrow('engines.node "20.x" needs a Node release that is not installed here, and the registry http://r/ cannot be reached (ECONNREFUSED); installed: 18.19.0');
  });

  it('reads engines.node: none, a range, or a one-line error for what is not a range', () => {
    expect(enginesNode({ name: 'x' })).toBeNull();
    expect(enginesNode(null)).toBeNull();
    expect(enginesNode({ engines: { node: ' ' } })).toBeNull();
    expect(enginesNode({ engines: { node: '18.x' } })).toBe('18.x');
    expect(enginesNode({ engines: { node: 22 } })).toBe('22');
    expect(() => enginesNode({ engines: { node: 'banana' } })).toThrow('engines.node "banana" is not a semver range');
    expect(() => enginesNode({ engines: { node: ['18'] } })).toThrow('engines.node must be a version range');
    expect(() => enginesNode({ engines: { node: `>=18 ${'<19 '.repeat(40)}` } })).toThrow('engines.node is longer than 100 characters');
  });

  it('gives a Node 18 build the newest npm whose engines accept it', () => {
    const npms = [
      { version: '10.9.3', engines: { node: '^18.17.0 || >=20.5.0' } },
      { version: '11.6.2', engines: { node: '^20.17.0 || >=22.9.0' } },
      { version: '12.0.0-pre.0', engines: { node: '>=22' } },
    ];
    expect(npmFor('18.20.8', npms)).toBe('10.9.3');
    expect(npmFor('22.23.5', npms)).toBe('11.6.2');
    expect(npmFor('16.20.2', npms)).toBeNull();
  });

  it('lists the newest release of each line', () => {
    expect(describeLines(['4.9.1', '18.1.0', '18.20.8', '20.1.0', '22.23.5', '24.0.0'], 3)).toBe('24.0.0, 22.23.5, 20.1.0, … down to 4.x');
  });

  it('keys a reusable install on the Node it was made for', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxkey-'));
    try {
      fs.writeFileSync(path.join(dir, 'package.json'), '{"dependencies":{"a":"1.0.0"}}');
      fs.writeFileSync(path.join(dir, 'package-lock.json'), '{}');
      const on18 = installKey(dir, {}, ['ci'], 'v18.20.8');
      expect(on18).toMatch(/^[0-9a-f]{64}$/);
      expect(installKey(dir, {}, ['ci'], 'v22.23.5')).not.toBe(on18);
      expect(installKey(dir, {}, ['ci'], 'v18.20.8')).toBe(on18);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the runtimes folder', () => {
  let dir: string;
  beforeEach(() => void (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxrs-'))));
  afterEach(() => {
    execFileSync('chmod', ['-R', 'u+w', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const fakeNode = async (staging: string) => {
    fs.mkdirSync(path.join(staging, 'bin'));
    fs.writeFileSync(path.join(staging, 'bin', 'node'), '#!/bin/sh\n', { mode: 0o755 });
    return { npm: null, integrity: 'sha512-x' };
  };

  it('installs whole or not at all: a failed install leaves nothing, and what a crash left goes at the next start', async () => {
    const store = new RuntimeStore(dir);
    await expect(store.install('18.1.0', async (staging) => {
      fs.writeFileSync(path.join(staging, 'half'), 'x');
      throw new Error('download failed');
    })).rejects.toThrow('download failed');
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.mkdirSync(path.join(dir, '.staging-18.2.0-dead'));
    expect(new RuntimeStore(dir).list()).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('installs a version once for deploys asking together, read-only, and adds an npm to it later', async () => {
    const store = new RuntimeStore(dir);
    let fills = 0;
    const [a, b] = await Promise.all([1, 2].map(() => store.install('18.1.0', (s) => (fills++, fakeNode(s)))));
    expect(fills).toBe(1);
    expect(a).toEqual(b);
    expect(store.list().map((i) => i.node)).toEqual(['18.1.0']);
    expect(fs.statSync(path.join(dir, '18.1.0', 'bin')).mode & 0o777).toBe(0o555);
    expect(fs.statSync(path.join(dir, '18.1.0', 'bin', 'node')).mode & 0o777).toBe(0o555);

    const info = await store.addNpm('18.1.0', async (npmDir) => {
      fs.mkdirSync(path.join(npmDir, 'bin'), { recursive: true });
      fs.writeFileSync(path.join(npmDir, 'bin', 'npm-cli.js'), '// npm\n', { mode: 0o755 });
      return '10.9.9';
    });
    expect(info.npm).toBe('10.9.9');
    expect(store.info('18.1.0')?.npm).toBe('10.9.9');
    expect(fs.readFileSync(path.join(dir, '18.1.0', 'bin', 'npm'), 'utf8')).toBe('// npm\n');
    expect(fs.statSync(path.join(dir, '18.1.0', 'lib', 'node_modules', 'npm')).mode & 0o777).toBe(0o555);
    store.remove('18.1.0');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('runtimes installed from the registry npm is configured with', () => {
  let px: Platform;
  let registry: FakeRegistry;
  let repo: AppRepo;
  let token: string;
  const pkgName = `node-linux-${process.arch}`;
  const runtimes = () => fs.readdirSync(path.join(px.data, 'runtimes')).sort();
  // bin/node of the fake releases: the server's own node, so each "release" really runs apps.
  const node = `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`;
  const app = (range: string, body: string) => ({
    'package.json': JSON.stringify({ name: 'pinned', version: '1.0.0', engines: { node: range }, scripts: { start: 'node server.js' } }),
    // Not npm start, which puts node_modules/.bin first on PATH.
    'Procfile': 'web: node server.js\n',
    'server.js': `const fs = require('fs'), path = require('path');
require('http').createServer((req, res) => {
  const bin = process.env.PATH.split(':')[0];
  let write = 'written';
  try { fs.writeFileSync(path.join(bin, 'planted'), 'x'); } catch (err) { write = err.code; }
  res.end(JSON.stringify({ body: ${JSON.stringify(body)}, bin, write }));
}).listen(process.env.PORT);
`,
  });
  const answer = async () => JSON.parse((await get(px.info.httpPort, 'pinned.localhost')).body) as { body: string; bin: string; write: string };

  beforeAll(async () => {
    registry = await new FakeRegistry().start();
    registry.publish(pkgName, '22.99.0', { files: { 'bin/node': node, 'LICENSE': 'MIT' } });
    registry.publish(pkgName, '22.98.0', { files: { 'bin/node': node }, wrongIntegrity: true });
    registry.publish(pkgName, '21.99.0', { files: { 'README.md': 'no binary here' } });
    px = new Platform(fs.mkdtempSync(path.join(os.tmpdir(), 'pxt-')));
    px.env = { npm_config_registry: registry.url };
    await px.boot();
    token = await px.createApp('pinned');
    repo = await AppRepo.create(app('>=22.99 <23', 'v1'));
  });
  afterAll(async () => {
    await registry.stop();
    await px.destroy();
    repo.remove();
  });

  it('installs the highest matching release once, first on PATH and read-only to the app', async () => {
    const push = await repo.push(px.gitUrl('pinned', token));
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain('-----> Using Node 22.99.0 (engines.node ">=22.99 <23")');
    expect(push.stderr).toContain(`installing ${pkgName}@22.99.0 into the shared runtimes folder`);
    expect(push.stderr).toMatch(/installed Node 22\.99\.0 in [\d.]+ s/);
    const a = await answer();
    expect(a.body).toBe('v1');
    expect(a.bin).toBe(path.join(px.data, 'runtimes', '22.99.0', 'bin'));
    expect(['EROFS', 'EACCES']).toContain(a.write);
    expect(fs.existsSync(path.join(px.data, 'runtimes', '22.99.0', 'bin', 'planted'))).toBe(false);
    expect(registry.requests).toContain(`/${pkgName}/-/${pkgName}-22.99.0.tgz`);

    const info = JSON.parse(await px.ok(['apps:info', 'pinned', '--json']));
    expect(info.node).toEqual({ version: '22.99.0', server: false });
    expect(await px.ok(['apps:info', 'pinned'])).toMatch(/node:\s+22\.99\.0\n/);
    expect(JSON.parse(await px.ok(['ps', 'pinned', '--json']))[0].node).toBe('22.99.0');
    const listed = JSON.parse(await px.ok(['runtimes', '--json']));
    expect(listed.installed).toEqual([expect.objectContaining({ node: '22.99.0', apps: ['pinned'], builds: [] })]);
    expect(await px.ok(['runtimes'])).toMatch(/22\.99\.0\s+server's\s+\d+ MB\s+pinned/);
  });

  it('refuses a download whose sha512 does not match, installing nothing; the old release keeps serving', async () => {
    await repo.commit(app('22.98.0', 'v2'), 'tampered release');
    const push = await repo.push(px.gitUrl('pinned', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain(`Push rejected: ${pkgName}@22.98.0: the download does not match the registry's sha512 integrity`);
    expect(runtimes()).toEqual(['22.99.0']);
    expect((await answer()).body).toBe('v1');
  });

  it('refuses a release that holds no bin/node', async () => {
    await repo.commit(app('21.x', 'v3'), 'no binary');
    const push = await repo.push(px.gitUrl('pinned', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain(`Push rejected: ${pkgName}@21.99.0 holds no bin/node: not installed`);
    expect(runtimes()).toEqual(['22.99.0']);
    expect((await answer()).body).toBe('v1');
  });

  it('refuses a range nothing satisfies in one line naming engines.node, the range and what is available', async () => {
    await repo.commit(app('99.x', 'v4'), 'future node');
    const push = await repo.push(px.gitUrl('pinned', token));
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('Push rejected: engines.node "99.x" matches no Node release the registry serves; available: 22.99.0, 21.99.0');
    expect((await answer()).body).toBe('v1');
  });

  it('with the registry down, deploys on an installed release and refuses one that is not installed', async () => {
    await registry.stop();
    await repo.commit(app('22.x', 'v5'), 'offline');
    const push = await repo.push(px.gitUrl('pinned', token));
    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain(`the registry ${registry.url} cannot be reached (ECONNREFUSED): using the installed 22.99.0`);
    expect((await answer()).body).toBe('v5');

    await repo.commit(app('20.x', 'v6'), 'not installed');
    const refused = await repo.push(px.gitUrl('pinned', token));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`Push rejected: engines.node "20.x" needs a Node release that is not installed here, and the registry ${registry.url} cannot be reached (ECONNREFUSED); installed: 22.99.0`);
    expect((await answer()).body).toBe('v5');
  });

  it('runtimes:prune keeps a runtime an app runs on and removes it once no app does', async () => {
    expect(await px.ok(['runtimes:prune'])).toBe('No unused runtimes: every installed Node runs an app or a kept build\n');
    expect(runtimes()).toEqual(['22.99.0']);
    await px.ok(['apps:destroy', 'pinned', '--confirm', 'pinned']);
    expect(await px.ok(['runtimes:prune'])).toMatch(/^Removed Node 22\.99\.0 \(\d+ MB\)\n$/);
    expect(runtimes()).toEqual([]);
  });
});
