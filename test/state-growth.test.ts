// The state document every change rewrites does not grow with release history.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { AppRepo, get, nodeApp } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform | undefined;
let repo: AppRepo | undefined;
afterEach(async () => {
  await px?.destroy();
  repo?.remove();
  px = undefined;
});

it('keeps --keep-releases records per app in its own file, archives older ones, and state.json holds none', async () => {
  px = await Platform.start(['--keep', '2', '--keep-releases', '3']);
  await px.createApp('hist');
  const token = await px.createApp('other');
  repo = await AppRepo.create(nodeApp('r1'));
  expect((await repo.push(px.gitUrl('other', token))).code).toBe(0);
  for (let i = 2; i <= 5; i++) await px.ok(['config:set', 'other', `N=${i}`]);
  const listed = JSON.parse(await px.ok(['releases', 'other', '--json'])) as Array<{ version: string }>;
  expect(listed.map((r) => r.version)).toEqual(['v5', 'v4', 'v3']);
  const archive = fs.readFileSync(path.join(px.data, 'apps', 'other', 'releases.archive.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).version);
  expect(archive).toEqual([1, 2]);
  const state = fs.readFileSync(path.join(px.data, 'state.json'), 'utf8');
  expect(state).not.toContain('"releases"');
  expect(JSON.parse(state).apps.other.current).toBe(5);
  // Rolling back to a release whose record was archived says so.
  const r = await px.cli(['rollback', 'other', 'v1']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('has no release v1');
  expect((await get(px.info.httpPort, 'other.localhost')).body).toBe('r1');
});

it('moves the release records of an older state.json into each app\'s history, once', async () => {
  px = await Platform.start();
  const token = await px.createApp('old');
  repo = await AppRepo.create(nodeApp('kept'));
  expect((await repo.push(px.gitUrl('old', token))).code).toBe(0);
  await px.ok(['config:set', 'old', 'A=1']);
  await px.stop();
  // Write the state as the previous version kept it: records inside the app, nextVersion beside them.
  const history = path.join(px.data, 'apps', 'old', 'releases.json');
  const h = JSON.parse(fs.readFileSync(history, 'utf8'));
  fs.rmSync(history);
  const file = path.join(px.data, 'state.json');
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  s.apps.old.releases = h.records;
  s.apps.old.nextVersion = h.nextVersion;
  fs.writeFileSync(file, JSON.stringify(s));
  await px.boot();
  expect(JSON.parse(await px.ok(['releases', 'old', '--json'])).map((r: { version: string }) => r.version)).toEqual(['v2', 'v1']);
  expect(fs.readFileSync(file, 'utf8')).not.toContain('"releases"');
  await px.ok(['config:set', 'old', 'A=2']);
  expect(JSON.parse(await px.ok(['releases', 'old', '--json']))[0].version).toBe('v3');
  expect((await get(px.info.httpPort, 'old.localhost')).body).toBe('kept');
});
