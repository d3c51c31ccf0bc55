import { afterAll, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, waitFor } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterAll(async () => {
  await px?.destroy();
  repo?.remove();
});

it('brings every app back on its current release after a restart, also after kill -9', async () => {
  px = await Platform.start();
  const token = await px.createApp('survivor');
  repo = await AppRepo.create(nodeApp('still here'));
  expect((await repo.push(px.gitUrl('survivor', token))).code).toBe(0);
  const pidBefore = JSON.parse(await px.ok(['ps', 'survivor', '--json']))[0].pid as number;

  await px.stop();
  await px.boot();
  expect((await get(px.info.httpPort, 'survivor.localhost')).body).toBe('still here');

  await px.kill9();
  await px.boot();
  expect((await get(px.info.httpPort, 'survivor.localhost')).body).toBe('still here');
  // The processes of the killed server do not linger.
  await waitFor(async () => {
    try {
      process.kill(pidBefore, 0);
      return false;
    } catch {
      return true;
    }
  }, 5000, 'the old app process to be gone');
});
