// Slow start through the whole platform: a push to a busy app moves its traffic
// to the new release over --slow-start seconds, and a crash of the old release
// meanwhile hands everything to the new one at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

const SLOW_START_S = 8;
let px: Platform;
const repos: AppRepo[] = [];

beforeAll(async () => {
  px = await Platform.start(['--slow-start', String(SLOW_START_S)]);
});
afterAll(async () => {
  await px.destroy();
  for (const r of repos) r.remove();
});

async function deployed(app: string, body: string, server = serverSource(body)) {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(nodeApp(body, { 'server.js': server }));
  repos.push(repo);
  const push = await repo.push(px.gitUrl(app, token));
  expect(push.code, push.stderr).toBe(0);
  return { repo, url: px.gitUrl(app, token) };
}

/** GETs host every 50 ms until stop(); the bodies in order. */
function sample(host: string) {
  const bodies: string[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      bodies.push((await get(px.info.httpPort, host)).body);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { bodies, stop: async () => ((running = false), await done) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('slow start', () => {
  it('moves a busy app to the new release over --slow-start seconds, with no failed request', async () => {
    const { repo, url } = await deployed('busy', 'busy v1');
    const traffic = load(px.info.httpPort, 'busy.localhost', 4);
    await sleep(1500); // a full second of traffic: the app counts as busy
    await repo.commit({ 'server.js': serverSource('busy v2') }, 'v2');
    const seen = sample('busy.localhost');
    const t0 = Date.now();
    const push = await repo.push(url);
    const pushMs = Date.now() - t0;
    await seen.stop();
    const after = await Promise.all(Array.from({ length: 20 }, () => get(px.info.httpPort, 'busy.localhost')));
    await traffic.stop();

    expect(push.code, push.stderr).toBe(0);
    expect(push.stderr).toContain(`Moving traffic to v2 over ${SLOW_START_S} s (slow start: the app is busy)`);
    expect(push.stderr).toContain('Released v2');
    expect(pushMs).toBeGreaterThanOrEqual(SLOW_START_S * 1000);
    expect(traffic.failures).toEqual([]);
    // Both releases answered while the traffic moved: the old one still after the new one first did.
    const firstNew = seen.bodies.indexOf('busy v2');
    expect(firstNew).toBeGreaterThanOrEqual(0);
    expect(seen.bodies.slice(firstNew)).toContain('busy v1');
    // Once the push returned, the old release gets nothing.
    expect(after.map((r) => r.body)).toEqual(Array(20).fill('busy v2'));
  });

  it('a crash of the old release during the move hands all traffic to the new one at once', async () => {
    const dying = serverSource('crashy v1').replace(
      "if (req.url === '/env')",
      "if (req.url === '/die') { res.end('dying'); setTimeout(() => process.exit(1), 20); return; }\n  if (req.url === '/env')",
    );
    const { repo, url } = await deployed('crashy', 'crashy v1', dying);
    const traffic = load(px.info.httpPort, 'crashy.localhost', 4);
    await sleep(1500);
    await repo.commit({ 'server.js': serverSource('crashy v2') }, 'v2');
    const t0 = Date.now();
    const pushing = repo.push(url);
    // The move has begun once the new release answers; then the old one is made to crash.
    while ((await get(px.info.httpPort, 'crashy.localhost')).body !== 'crashy v2') await sleep(20);
    while ((await get(px.info.httpPort, 'crashy.localhost', '/die')).body !== 'dying') await sleep(20);
    const crashedAt = Date.now();
    const push = await pushing;
    const pushDone = Date.now();
    const after = await Promise.all(Array.from({ length: 20 }, () => get(px.info.httpPort, 'crashy.localhost')));
    await traffic.stop();

    expect(push.code, push.stderr).toBe(0);
    // Without the crash the move would have lasted SLOW_START_S seconds from its start.
    expect(pushDone - crashedAt).toBeLessThan(3000);
    expect(pushDone - t0).toBeLessThan(SLOW_START_S * 1000);
    expect(after.map((r) => r.body)).toEqual(Array(20).fill('crashy v2'));
  });
});
