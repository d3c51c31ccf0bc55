// `platformx server --proxy-workers 2` through the whole platform: real pushes,
// real HTTP through both workers, server:info listing them, and a server restart
// that leaves the workers serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, serverSource } from './support/apps.js';
import { servedByEach } from './support/dataplane.js';
import { BIN, Platform, run } from './support/platform.js';

interface WorkerRow { slot: number; pid: number; state: string; connections: number; requests: number; restarts: number }
let px: Platform;
let repo: AppRepo;
let url: string;
const workers = async () => (JSON.parse(await px.ok(['server:info', '--json'])) as { proxyWorkers: WorkerRow[] }).proxyWorkers;

beforeAll(async () => {
  px = new Platform((await import('node:fs')).mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'pxw-')), ['--proxy-workers', '2']);
  px.keepApps = true;
  await px.boot();
  const token = await px.createApp('web');
  repo = await AppRepo.create(nodeApp('web v1'));
  url = px.gitUrl('web', token);
  expect((await repo.push(url)).code).toBe(0);
});
afterAll(async () => {
  px.keepApps = false;
  await px.destroy();
  repo.remove();
});

/** New connections, four at a time, until stop(); each answer with the time its request was sent. */
function newConnections(host: string) {
  const sent: Array<{ at: number; status: number; body: string }> = [];
  const errors: string[] = [];
  let running = true;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const at = Date.now();
      try {
        const r = await get(px.info.httpPort, host);
        sent.push({ at, status: r.status, body: r.body });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  });
  return { sent, errors, stop: async () => ((running = false), await Promise.all(loops)) };
}

describe('platformx server --proxy-workers 2', () => {
  it('both workers serve, server:info lists them, and nothing sent after a push returns reaches the old release', async () => {
    const text = await px.ok(['server:info']);
    expect(text).toMatch(/PROXY WORKER\s+PID\s+STATE\s+CONNECTIONS\s+REQUESTS\s+RESTARTS\s+UPTIME/);
    expect(text).toMatch(/worker\.1\s+\d+\s+serving/);
    expect(text).toMatch(/worker\.2\s+\d+\s+serving/);
    const before = await workers();
    const fresh = newConnections('web.localhost');
    const kept = load(px.info.httpPort, 'web.localhost', 4);
    await repo.commit({ 'server.js': serverSource('web v2') }, 'v2');
    const push = await repo.push(url);
    const returned = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all([fresh.stop(), kept.stop()]);

    expect(push.code, push.stderr).toBe(0);
    expect(fresh.errors).toEqual([]);
    expect(kept.failures).toEqual([]);
    expect(fresh.sent.filter((r) => r.body === 'web v1').length).toBeGreaterThan(0);
    const late = fresh.sent.filter((r) => r.at > returned);
    expect(late.length).toBeGreaterThan(10);
    expect(late.filter((r) => r.status !== 200 || r.body !== 'web v2')).toEqual([]);
    const after = await workers();
    expect(after.map((w) => w.pid)).toEqual(before.map((w) => w.pid));
    expect(after.every((w, i) => w.requests > before[i]!.requests)).toBe(true);
  });

  it('a server restart leaves the workers serving: no failed request, the same worker processes', async () => {
    const before = await workers();
    const traffic = load(px.info.httpPort, 'web.localhost', 4);
    await new Promise((r) => setTimeout(r, 300));
    await px.stop();
    expect((await get(px.info.httpPort, 'web.localhost')).body).toBe('web v2');
    await px.boot();
    await new Promise((r) => setTimeout(r, 300));
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    const after = await workers();
    expect(after.map((w) => [w.pid, w.state])).toEqual(before.map((w) => [w.pid, 'serving']));
    // Both still serve: 4 connections can all land on one worker, so new ones follow, one at a time.
    const serve = async () => expect((await get(px.info.httpPort, 'web.localhost')).body).toBe('web v2');
    expect((await servedByEach(workers, before, serve, { every: 10 })).every((n) => n > 0)).toBe(true);
  });

  it('--proxy-workers must be a whole number, 1 or more', async () => {
    const r = await run(process.execPath, [BIN, 'server', '--data', px.data, '--proxy-workers', '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^error: --proxy-workers must be a whole number of processes, 1 or more \(default: the number of cores\), not '0'$/);
  });
});
