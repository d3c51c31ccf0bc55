// Issue 11, racing pushes: a push that waited for another push's deploy and is
// now stale (its branch moved meanwhile) is refused as soon as it gets the
// deploy lock, before any release is made; a waiting push that is still current
// deploys as before.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource } from './support/apps.js';
import { WatchedGit } from './support/git-client.js';
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

/** Two work trees of one app, both at its deployed first commit. */
async function twoPushers(app: string): Promise<{ url: string; a: AppRepo; b: AppRepo }> {
  const url = px.gitUrl(app, await px.createApp(app));
  const a = await AppRepo.create(nodeApp('first'));
  repos.push(a);
  const first = await a.push(url);
  expect(first.code, first.stderr).toBe(0);
  const b = new AppRepo();
  repos.push(b);
  await b.git(['init', '-q', '-b', 'main']);
  await b.git(['pull', '-q', url, 'main']);
  return { url, a, b };
}

/**
 * A pushes a release that takes 3 s to start; B pushes `bRefspec` while A holds
 * the deploy lock. Resolves with both results once both pushes are over.
 */
async function pushWhileAnotherDeploys(url: string, a: AppRepo, b: AppRepo, bRefspec: string) {
  await a.commit({ 'server.js': serverSource('from a', { delayListenMs: 3000 }) }, 'a');
  await b.commit({ 'server.js': serverSource('from b') }, 'b');
  const pushA = new WatchedGit(['push', url, 'main'], a.dir);
  await pushA.waitFor(/Starting web\.1/);
  const pushB = new WatchedGit(['push', url, bRefspec], b.dir);
  const [ra, rb] = await Promise.all([pushA.done, pushB.done]);
  expect(ra.code, ra.stderr).toBe(0);
  return { ra, rb };
}

const releasesOf = (app: string) => px.releases(app);

describe('racing pushes', () => {
  it('a push whose branch moved while it waited is refused at once: no release, no process', async () => {
    const { url, a, b } = await twoPushers('race');
    const { rb } = await pushWhileAnotherDeploys(url, a, b, 'main');
    const aCommit = (await a.git(['rev-parse', 'HEAD'])).stdout.trim();

    expect(rb.code).not.toBe(0);
    expect(rb.stderr).toContain("Another deploy of 'race' is running; waiting for it to finish");
    expect(rb.stderr).toContain(`main moved to ${aCommit.slice(0, 7)} while this push waited (v2 was deployed): fetch, merge or rebase, then push again`);
    // Refused before anything was built or started.
    expect(rb.stderr).not.toContain('Preparing release');
    expect(releasesOf('race').map((r) => [r.version, r.status])).toEqual([[1, 'succeeded'], [2, 'succeeded']]);
    expect(fs.existsSync(path.join(px.data, 'apps', 'race', 'releases', 'v3'))).toBe(false);
    const ps = JSON.parse(await px.ok(['ps', 'race', '--json'])) as { release: string }[];
    expect(ps.map((p) => p.release)).toEqual(['v2']);
    expect((await get(px.info.httpPort, 'race.localhost')).body).toBe('from a');

    // Doing what the message says works.
    const rebase = await b.git(['pull', '-q', '--rebase', '-X', 'theirs', url, 'main']);
    expect(rebase.code, rebase.stderr).toBe(0);
    const again = await b.push(url);
    expect(again.code, again.stderr).toBe(0);
    expect((await get(px.info.httpPort, 'race.localhost')).body).toBe('from b');
  });

  it('a push that waited and is still current deploys after the other', async () => {
    const { url, a, b } = await twoPushers('queue');
    // master is a deploy branch too, and nobody moved it.
    const { rb } = await pushWhileAnotherDeploys(url, a, b, 'main:master');
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stderr).toContain('waiting for it to finish');
    expect(rb.stderr).toContain('Released v3');
    expect(releasesOf('queue').map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect((await get(px.info.httpPort, 'queue.localhost')).body).toBe('from b');
  });
});
