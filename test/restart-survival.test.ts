// A platform restart never restarts the apps: the data plane (proxy listeners and
// app processes) serves on while the server stops and starts, and the next server
// adopts what runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, waitFor } from './support/apps.js';
import { Platform, alive } from './support/platform.js';

let px: Platform;
const repos: AppRepo[] = [];
const APPS = ['one', 'two', 'three', 'four', 'five'];
type Ps = Array<{ process: string; pid: number; state: string; release: string; restarts: number }>;
const ps = async (app: string) => JSON.parse(await px.ok(['ps', app, '--json'])) as Ps;

beforeAll(async () => {
  px = new Platform((await import('node:fs')).mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'pxs-')));
  px.keepApps = true;
  await px.boot();
  for (const app of APPS) {
    const token = await px.createApp(app);
    const repo = await AppRepo.create(nodeApp(`${app} says hi`, {
      'server.js': `const http = require('http');
let n = 0;
http.createServer((q, s) => { if (q.url === '/log') console.log('logged ' + (++n)); s.end(${JSON.stringify(`${app} says hi`)}); }).listen(process.env.PORT);
process.on('SIGTERM', () => process.exit(0));`,
    }));
    repos.push(repo);
    expect((await repo.push(px.gitUrl(app, token))).code).toBe(0);
  }
});
afterAll(async () => {
  px.keepApps = false;
  await px.destroy();
  for (const r of repos) r.remove();
});

describe('apps outlive a server restart', () => {
  it('SIGTERM and start: no failed request, the same processes, logs and supervision go on', async () => {
    const before = await Promise.all(APPS.map(ps));
    const traffic = load(px.info.httpPort, 'two.localhost', 4);
    await new Promise((r) => setTimeout(r, 300));
    await px.stop();
    // While no server runs, the proxy still answers and the app still logs.
    expect((await get(px.info.httpPort, 'two.localhost')).body).toBe('two says hi');
    await get(px.info.httpPort, 'three.localhost', '/log');
    await px.boot();
    await new Promise((r) => setTimeout(r, 300));
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    expect(traffic.ok).toBeGreaterThan(50);
    expect(px.output).toMatch(/data plane pid \d+ kept serving \(5 app process\(es\)\)/);
    const after = await Promise.all(APPS.map(ps));
    expect(after.map((a) => a.map((p) => p.pid))).toEqual(before.map((b) => b.map((p) => p.pid)));
    expect(after.every((a) => a[0]!.state === 'up')).toBe(true);
    // The line logged while the server was down was kept and written once it came back.
    await waitFor(async () => (await px.ok(['logs', 'three'])).includes('app[web.1]: logged 1'), 5000, 'the buffered log line');
    await get(px.info.httpPort, 'three.localhost', '/log');
    await waitFor(async () => (await px.ok(['logs', 'three'])).includes('app[web.1]: logged 2'), 5000, 'a new log line');
    // Supervision resumed: a killed process comes back.
    const [victim] = await ps('four');
    process.kill(victim!.pid, 'SIGKILL');
    await waitFor(async () => {
      const [p] = await ps('four');
      return p!.pid !== victim!.pid && p!.state === 'up';
    }, 15_000, 'the killed process to be restarted');
    expect((await get(px.info.httpPort, 'four.localhost')).body).toBe('four says hi');
  });

  it('kill -9 of the server: apps serve on and are adopted by the next start', async () => {
    const [before] = await ps('one');
    await px.kill9();
    expect((await get(px.info.httpPort, 'one.localhost')).body).toBe('one says hi');
    await px.boot();
    const [after] = await ps('one');
    expect(after!.pid).toBe(before!.pid);
    // A deploy after adoption replaces the adopted process as usual.
    const repo = repos[0]!;
    await repo.commit({ 'server.js': "require('http').createServer((q, s) => s.end('one v2')).listen(process.env.PORT);" }, 'v2');
    const token = (await px.ok(['tokens:create', 'one'])).trim();
    expect((await repo.push(px.gitUrl('one', token))).code).toBe(0);
    expect((await get(px.info.httpPort, 'one.localhost')).body).toBe('one v2');
  });

  it('--stop-apps stops everything for real, and the next start brings every app back', async () => {
    await px.stop();
    px.keepApps = false;
    await px.boot();
    const dp = px.dataplanePid();
    await px.stop();
    await expect(get(px.info.httpPort, 'two.localhost')).rejects.toThrow();
    expect(alive(dp!)).toBe(false);
    await px.boot();
    expect(px.output).toMatch(/data plane started/);
    for (const app of APPS.slice(1)) expect((await get(px.info.httpPort, `${app}.localhost`)).body).toBe(`${app} says hi`);
  });
});
