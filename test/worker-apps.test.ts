// Apps without a web process (Dokku's tests/apps/nodejs-worker): the Procfile's
// first type runs; its health is that it stays up.
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, waitFor } from './support/apps.js';
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

const WORKER = `let n = 0;
console.log('worker booted');
setInterval(() => console.log('tick ' + (++n)), 200);
process.on('SIGTERM', () => process.exit(0));
`;

/** Dokku's nodejs-worker as it is, but for its engines.node (4.2.x). */
const dokkuWorker = (extra: Record<string, string> = {}) => ({
  'package.json': JSON.stringify({ name: 'node-example', version: '0.0.1' }),
  Procfile: 'worker: node worker.js\n',
  'worker.js': WORKER,
  ...extra,
});

/** pids below a process, from /proc (the sandbox's node is a few levels down). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parents) if (pp === p) { out.push(c); walk(c); }
  };
  walk(root);
  return out;
}
const cmdline = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return ''; } };
const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

async function create(app: string, files: Record<string, string>): Promise<{ repo: AppRepo; url: string }> {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  repos.push(repo);
  return { repo, url: px.gitUrl(app, token) };
}

it("Dokku's nodejs-worker deploys: one worker, as the app's user, its output in logs, 503 on the web, normal ps and releases", async () => {
  const { repo, url } = await create('bgjobs', dokkuWorker());
  const started = Date.now();
  const push = await repo.push(url);
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain('-----> No web process: starting worker.1');
  expect(push.stderr).toContain('worker.1 must stay up for 10 s');
  expect(Date.now() - started).toBeGreaterThanOrEqual(10_000);

  const ps = JSON.parse(await px.ok(['ps', 'bgjobs', '--json'])) as Array<{ process: string; pid: number; state: string; release: string }>;
  expect(ps).toHaveLength(1);
  expect(ps[0]).toMatchObject({ process: 'worker.1', state: 'up', release: 'v1' });
  const worker = [ps[0]!.pid, ...descendants(ps[0]!.pid)].filter((p) => cmdline(p) === 'node worker.js');
  expect(worker).toHaveLength(1);
  const app = JSON.parse(await px.ok(['apps:info', 'bgjobs', '--json']));
  if (app.isolation === 'sandbox') expect(uidOf(worker[0]!)).toBeGreaterThanOrEqual(20000);

  const logs = await px.ok(['logs', 'bgjobs']);
  expect(logs).toMatch(/app\[worker\.1\]: worker booted/);
  expect(logs).toMatch(/app\[worker\.1\]: tick \d+/);
  const web = await get(px.info.httpPort, 'bgjobs.localhost');
  expect(web.status).toBe(503);
  expect(web.body).toContain('no running web process');
  const releases = JSON.parse(await px.ok(['releases', 'bgjobs', '--json']));
  expect(releases[0]).toMatchObject({ version: 'v1', status: 'succeeded', current: true });
});

it('a worker that exits at once rejects the push; the previous worker keeps running', async () => {
  const { repo, url } = await create('flaky', dokkuWorker({ 'app.json': JSON.stringify({ healthchecks: { worker: [{ type: 'uptime', uptime: 2 }] } }) }));
  expect((await repo.push(url)).code).toBe(0);
  const [before] = JSON.parse(await px.ok(['ps', 'flaky', '--json']));
  await repo.commit({ 'worker.js': "console.log('giving up'); process.exit(3);\n" }, 'exits');
  const push = await repo.push(url);
  expect(push.code).not.toBe(0);
  expect(push.stderr).toContain('worker.1 exited with code 3 within 2 s of starting');
  const [after] = JSON.parse(await px.ok(['ps', 'flaky', '--json']));
  expect(after).toMatchObject({ pid: before.pid, release: 'v1', state: 'up' });
  const lines = (await px.ok(['logs', 'flaky'])).split('\n').filter((l) => l.includes('tick')).length;
  await waitFor(async () => (await px.ok(['logs', 'flaky'])).split('\n').filter((l) => l.includes('tick')).length > lines, 5000, 'the old worker to go on');
});

it('a push that adds a web line switches the app to the web health check and routing; old workers stop', async () => {
  const { repo, url } = await create('grows', dokkuWorker({ 'app.json': JSON.stringify({ healthchecks: { worker: [{ type: 'uptime', uptime: 1 }] } }) }));
  expect((await repo.push(url)).code).toBe(0);
  const files = nodeApp('now with a web');
  await repo.commit({ ...files, Procfile: 'web: node server.js\nworker: node worker.js\n' }, 'web');
  const push = await repo.push(url);
  expect(push.code, push.stderr).toBe(0);
  expect(push.stderr).toContain('Health check: GET /');
  expect(push.stderr).not.toContain('No web process');
  expect((await get(px.info.httpPort, 'grows.localhost')).body).toBe('now with a web');
  // The formation runs web.1 only: the worker type is scaled to 0 unless asked for.
  await waitFor(async () => {
    const ps = JSON.parse(await px.ok(['ps', 'grows', '--json'])) as Array<{ process: string }>;
    return ps.length === 1 && ps[0]!.process === 'web.1';
  }, 15_000, 'the old worker to stop');
  await px.ok(['ps:scale', 'grows', 'worker=1']);
  const ps = JSON.parse(await px.ok(['ps', 'grows', '--json'])) as Array<{ process: string }>;
  expect(ps.map((p) => p.process).sort()).toEqual(['web.1', 'worker.1']);
});

it('a release with no process type at all is still refused with the old message', async () => {
  const { repo, url } = await create('empty', { 'package.json': JSON.stringify({ name: 'x' }), 'README': 'nothing to run' });
  const push = await repo.push(url);
  expect(push.code).not.toBe(0);
  expect(push.stderr).toContain('no start command: add a Procfile web line');
});
