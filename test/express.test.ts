import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppRepo, get } from './support/apps.js';
import { Platform, run } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterAll(async () => {
  await px?.destroy();
  repo?.remove();
});

const expressServer = (body: string) => `const express = require('express');
const app = express();
app.get('/', (req, res) => res.send(${JSON.stringify(body)}));
app.listen(process.env.PORT);
`;

it('deploys an Express app with a lockfile through npm ci, with dev dependencies pruned', async () => {
  px = await Platform.start();
  const token = await px.createApp('expressed');
  repo = await AppRepo.create({
    'package.json': JSON.stringify({ name: 'expressed', version: '1.0.0', main: 'app.js', scripts: { start: 'node app.js' },
      dependencies: { express: '4.21.2' }, devDependencies: { 'is-number': '7.0.0' } }, null, 2),
    'app.js': expressServer('express v1'),
  });
  const lock = await run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund'], { cwd: repo.dir });
  expect(lock.code, lock.stderr).toBe(0);
  await repo.commit({}, 'lockfile');
  const push = await repo.push(px.gitUrl('expressed', token));
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain('Installing dependencies (npm ci)');
  expect((await get(px.info.httpPort, 'expressed.localhost')).body).toBe('express v1');
  const release = path.join(px.data, 'apps', 'expressed', 'releases', 'v1');
  expect(fs.existsSync(path.join(release, 'node_modules', 'express'))).toBe(true);
  expect(fs.existsSync(path.join(release, 'node_modules', 'is-number'))).toBe(false);
  // The npm cache now holds the packages (shared, or the app's own when sandboxed): the next build needs no download.
  const caches = [path.join(px.data, 'cache', 'npm'), path.join(px.data, 'apps', 'expressed', 'cache', 'npm')];
  expect(caches.filter((c) => fs.existsSync(c) && fs.readdirSync(c).length > 0)).toHaveLength(1);
  await repo.commit({ 'app.js': expressServer('express v2') }, 'v2');
  const second = await repo.push(px.gitUrl('expressed', token));
  expect(second.code, second.stderr).toBe(0);
  expect((await get(px.info.httpPort, 'expressed.localhost')).body).toBe('express v2');
});
