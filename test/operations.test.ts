import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, serverSource, waitFor } from './support/apps.js';
import { BIN, Platform } from './support/platform.js';

let px: Platform;
const repos: AppRepo[] = [];
async function deployed(app: string, files: Record<string, string>): Promise<{ repo: AppRepo; token: string }> {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  repos.push(repo);
  const r = await repo.push(px.gitUrl(app, token));
  if (r.code !== 0) throw new Error(r.stderr);
  return { repo, token };
}
const state = () => JSON.parse(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8'));

beforeAll(async () => {
  px = await Platform.start();
});
afterAll(async () => {
  await px.destroy();
  for (const r of repos) r.remove();
});

describe('supervision', () => {
  it('restarts a killed process by itself, and a crashing one with growing delays', async () => {
    await deployed('phoenix', nodeApp('alive', {
      'server.js': `require('http').createServer((q, s) => s.end('alive')).listen(process.env.PORT);`,
    }));
    const [proc] = JSON.parse(await px.ok(['ps', 'phoenix', '--json']));
    process.kill(proc.pid, 'SIGKILL');
    const back = await waitFor(async () => {
      const [p] = JSON.parse(await px.ok(['ps', 'phoenix', '--json']));
      return p.state === 'up' && p.pid !== proc.pid ? p : undefined;
    }, 15_000, 'the process to come back');
    expect(back.restarts).toBe(1);
    expect((await get(px.info.httpPort, 'phoenix.localhost')).body).toBe('alive');
    // Killed again at once: the next delay is longer (2 s), shown by ps.
    process.kill(back.pid, 'SIGKILL');
    const waiting = await waitFor(async () => {
      const [p] = JSON.parse(await px.ok(['ps', 'phoenix', '--json']));
      return p.state.startsWith('restarting in') ? p : undefined;
    }, 5000, 'the restarting state');
    expect(waiting.state).toMatch(/^restarting in [12]s$/);
    // While no process runs, the proxy answers 503 at once.
    const down = await get(px.info.httpPort, 'phoenix.localhost');
    expect(down.status).toBe(503);
    await waitFor(async () => (await get(px.info.httpPort, 'phoenix.localhost')).body === 'alive', 15_000, 'recovery');
    const logs = await px.ok(['logs', 'phoenix', '-n', '50', '--source', 'platform']);
    expect(logs).toContain('restarting in 1s');
    expect(logs).toContain('restarting in 2s');
  });
});

describe('releases and rollback', () => {
  it('lists releases; rollback serves the first body again without an install step', async () => {
    const { repo, token } = await deployed('rolly', nodeApp('first'));
    await repo.commit({ 'server.js': serverSource('second') }, 'second');
    expect((await repo.push(px.gitUrl('rolly', token))).code).toBe(0);
    const releases = JSON.parse(await px.ok(['releases', 'rolly', '--json']));
    expect(releases.map((r: { version: string; current: boolean }) => [r.version, r.current])).toEqual([['v2', true], ['v1', false]]);
    const out = await px.ok(['rollback', 'rolly']);
    expect(out).not.toContain('Installing');
    expect(out).toContain('from the build of v1');
    expect((await get(px.info.httpPort, 'rolly.localhost')).body).toBe('first');
    const after = JSON.parse(await px.ok(['releases', 'rolly', '--json']));
    expect(after[0]).toMatchObject({ version: 'v3', source: 'rollback', current: true, status: 'succeeded' });
    expect(await px.ok(['releases:output', 'rolly', 'v1'])).toContain('Checking out');
    const bad = await px.cli(['rollback', 'rolly', 'v99']);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, "error: app 'rolly' has no release v99: see 'platformx releases rolly'"]);
  });
});

describe('config vars', () => {
  it('reach the app with zero failed requests under load, and never appear in logs', async () => {
    await deployed('configured', nodeApp('x', {
      'server.js': `require('http').createServer((q, s) => s.end('greeting=' + (process.env.GREETING || 'none'))).listen(process.env.PORT);`,
    }));
    const secret = 'hi-s3cr3t-value';
    const traffic = load(px.info.httpPort, 'configured.localhost', 4);
    await new Promise((r) => setTimeout(r, 200));
    const out = await px.ok(['config:set', 'configured', `GREETING=${secret}`]);
    await new Promise((r) => setTimeout(r, 200));
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    expect(traffic.bodies.get('greeting=none')).toBeGreaterThan(0);
    expect(traffic.bodies.get(`greeting=${secret}`)).toBeGreaterThan(0);
    expect(out).not.toContain(secret);
    expect((await px.ok(['config:get', 'configured', 'GREETING'])).trim()).toBe(secret);
    for (const f of walk(path.join(px.data, 'apps', 'configured')).filter((f) => f.endsWith('.log'))) {
      expect(fs.readFileSync(f, 'utf8')).not.toContain(secret);
    }
    expect(px.output).not.toContain(secret);
    for (const [args, msg] of [
      [['config:set', 'configured', 'PORT=1'], "config key 'PORT' is reserved"],
      [['config:set', 'configured', '1BAD=x'], "invalid config key '1BAD'"],
      [['config:set', 'configured', 'NOVALUE'], "'NOVALUE' has no value"],
    ] as const) {
      const r = await px.cli([...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(msg);
    }
    // A multi-line value is kept exactly.
    await px.ok(['config:set', 'configured', 'CERT=line1\nline2', '--no-restart']);
    expect(state().apps.configured.config.CERT).toBe('line1\nline2');
  });
});

describe('logs', () => {
  it('logs -n shows request lines and deploy events; -f streams a request made after it started', async () => {
    await deployed('chatty', nodeApp('chat', {
      'server.js': `require('http').createServer((q, s) => { console.log('handled ' + q.url); s.end('chat'); }).listen(process.env.PORT);`,
    }));
    await get(px.info.httpPort, 'chatty.localhost', '/first');
    await waitFor(async () => (await px.ok(['logs', 'chatty', '-n', '20'])).includes('handled /first'), 5000, 'the request line');
    const recent = await px.ok(['logs', 'chatty', '-n', '20']);
    expect(recent).toMatch(/app\[web\.1\]: handled \/first/);
    expect(recent).toMatch(/router: host_header=chatty\.localhost .*status=200/);
    expect(recent).toMatch(/platform\[deploy\]: Released v1/);
    // -n 1: the last line shows once the follower is attached, so the request below comes after it.
    const follower = spawn(process.execPath, [BIN, '--data', px.data, 'logs', 'chatty', '-n', '1', '-f']);
    let streamed = '';
    follower.stdout.on('data', (d) => (streamed += d));
    await waitFor(async () => streamed.length > 0, 10_000, 'the follower to attach');
    await get(px.info.httpPort, 'chatty.localhost', '/after-follow');
    await waitFor(async () => streamed.includes('handled /after-follow'), 5000, 'the followed line');
    follower.kill('SIGINT');
    await new Promise((r) => follower.once('exit', r));
  });
});

describe('Procfile process types', () => {
  it('web=2 spreads requests over two processes; workers run supervised', async () => {
    await deployed('scaled', {
      'Procfile': 'web: node web.js\nworker: node worker.js\n',
      'web.js': `require('http').createServer((q, s) => s.end(String(process.env.DYNO))).listen(process.env.PORT);`,
      'worker.js': `setInterval(() => console.log('working'), 200);`,
    });
    await px.ok(['ps:scale', 'scaled', 'web=2', 'worker=1']);
    const ps = JSON.parse(await px.ok(['ps', 'scaled', '--json']));
    expect(ps.map((p: { process: string }) => p.process).sort()).toEqual(['web.1', 'web.2', 'worker.1']);
    const pids = new Set<string>();
    for (let i = 0; i < 10; i++) pids.add((await get(px.info.httpPort, 'scaled.localhost')).body);
    expect(pids.size).toBe(2);
    await waitFor(async () => (await px.ok(['logs', 'scaled', '-n', '50'])).includes('app[worker.1]: working'), 5000, 'worker output');
  });

  it('a failing release: command fails the deploy and the old release keeps serving', async () => {
    const { repo, token } = await deployed('phased', nodeApp('old'));
    await repo.commit({ 'Procfile': 'web: node server.js\nrelease: echo migrating && exit 3\n', 'server.js': serverSource('new') }, 'bad release');
    const r = await repo.push(px.gitUrl('phased', token));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('migrating');
    expect(r.stderr).toContain('the release command failed (exit code 3)');
    expect((await get(px.info.httpPort, 'phased.localhost')).body).toBe('old');
  });
});

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}
