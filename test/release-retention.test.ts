import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterAll(async () => {
  await px?.destroy();
  repo?.remove();
});

it('keeps only the newest --keep builds; rolling back to a removed build says so and changes nothing', async () => {
  px = await Platform.start(['--keep', '2']);
  const token = await px.createApp('kept');
  repo = await AppRepo.create(nodeApp('b1'));
  expect((await repo.push(px.gitUrl('kept', token))).code).toBe(0);
  for (const body of ['b2', 'b3']) {
    await repo.commit({ 'server.js': serverSource(body) }, body);
    expect((await repo.push(px.gitUrl('kept', token))).code).toBe(0);
  }
  const releases = path.join(px.data, 'apps', 'kept', 'releases');
  expect(fs.readdirSync(releases).sort()).toEqual(['v2', 'v3']);
  const r = await px.cli(['rollback', 'kept', 'v1']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('the build of v1 was removed');
  expect((await get(px.info.httpPort, 'kept.localhost')).body).toBe('b3');
  expect(JSON.parse(await px.ok(['releases', 'kept', '--json']))).toHaveLength(3);
  // The default rollback target is the newest earlier release that still has its build.
  await px.ok(['rollback', 'kept']);
  expect((await get(px.info.httpPort, 'kept.localhost')).body).toBe('b2');
});
