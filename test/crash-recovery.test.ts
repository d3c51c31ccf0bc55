import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource, waitFor } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterAll(async () => {
  await px?.destroy();
  repo?.remove();
});

it('kill -9 of the server in the middle of a deploy: the previous release serves, the half release is failed and removed', async () => {
  px = await Platform.start();
  const token = await px.createApp('steady');
  repo = await AppRepo.create(nodeApp('steady v1'));
  expect((await repo.push(px.gitUrl('steady', token))).code).toBe(0);

  await repo.commit({
    'package.json': JSON.stringify({ name: 'app', scripts: { start: 'node server.js', build: 'sleep 30' } }),
    'server.js': serverSource('steady v2'),
  }, 'slow build');
  const push = repo.push(px.gitUrl('steady', token));
  const stateFile = path.join(px.data, 'state.json');
  await waitFor(async () => px!.releases('steady').some((r) => r.status === 'building'), 20_000, 'the build to start');
  await waitFor(async () => fs.existsSync(path.join(px!.data, 'apps', 'steady', 'releases', 'v2', 'server.js')), 10_000, 'the checkout');
  await px.kill9();
  expect((await push).code).not.toBe(0);

  await px.boot();
  expect((await get(px.info.httpPort, 'steady.localhost')).body).toBe('steady v1');
  const app = JSON.parse(fs.readFileSync(stateFile, 'utf8')).apps.steady;
  expect(app.current).toBe(1);
  expect(px.releases('steady')[1]).toMatchObject({ version: 2, status: 'failed' });
  expect(fs.existsSync(path.join(px.data, 'apps', 'steady', 'releases', 'v2'))).toBe(false);
});
