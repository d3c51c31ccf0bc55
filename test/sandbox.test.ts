// Cotenancy as root (CI runs as root): a hostile app and a hostile build try to
// reach a victim app, the platform's secrets and the machine; every attempt fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, load, nodeApp, waitFor } from './support/apps.js';
import { BIN, Platform, run } from './support/platform.js';

const isRoot = process.getuid?.() === 0;
let px: Platform;
const repos: AppRepo[] = [];

// Each probe reports the error code it met, or 'OK' when it got through.
const PROBES = `
const fs = require('fs');
function probe(fn) { try { fn(); return 'OK'; } catch (e) { return e.code || e.message; } }
module.exports = (t) => ({
  victimCode: probe(() => fs.readFileSync(t.data + '/apps/victim/releases/v1/server.js')),
  victimEnv: probe(() => fs.readFileSync('/proc/' + t.victimPid + '/environ')),
  killVictim: probe(() => process.kill(t.victimPid, 'SIGKILL')),
  state: probe(() => fs.readFileSync(t.data + '/state.json')),
  hostKey: probe(() => fs.readFileSync(t.data + '/ssh_host_ed25519_key')),
  root: probe(() => fs.readdirSync('/root')),
  writeUsr: probe(() => fs.writeFileSync('/usr/pwned', 'x')),
  writeEtc: probe(() => fs.writeFileSync('/etc/pwned', 'x')),
  processes: fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).length,
  uid: process.getuid(),
  cwd: process.cwd(),
  home: process.env.HOME,
  envKeys: Object.keys(process.env).sort(),
});
`;

const HOSTILE_SERVER = `
const http = require('http');
const probes = require('./probes.js');
const { spawn } = require('child_process');
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/attack') return res.end(JSON.stringify(probes(JSON.parse(url.searchParams.get('t')))));
  if (url.pathname === '/forkbomb') {
    res.end('forking');
    for (let i = 0; i < 2000; i++) spawn('sleep', ['60']); // an 'error' (EAGAIN) nobody handles crashes the app
    return;
  }
  if (url.pathname === '/hog') {
    res.end('hogging');
    const keep = [];
    setInterval(() => { for (let i = 0; i < 8; i++) keep.push(Buffer.alloc(4 * 1024 * 1024, 1)); }, 10);
    return;
  }
  res.end('hostile');
}).listen(process.env.PORT);
`;

beforeAll(async () => {
  if (isRoot) px = await Platform.start();
});
afterAll(async () => {
  await px?.destroy();
  for (const r of repos) r.remove();
});

async function deploy(app: string, files: Record<string, string>) {
  const token = await px.createApp(app);
  const repo = await AppRepo.create(files);
  repos.push(repo);
  const push = await repo.push(px.gitUrl(app, token));
  expect(push.code, push.stderr).toBe(0);
  return push;
}

describe.runIf(isRoot)('the sandbox, as root', () => {
  let victimPid = 0;

  it('gives each app its own uid, /app as home and working directory, and only its own environment', async () => {
    await deploy('victim', nodeApp('victim ok'));
    await px.ok(['config:set', 'victim', 'DATABASE_URL=postgres://secret']);
    victimPid = JSON.parse(await px.ok(['ps', 'victim', '--json']))[0].pid;
    const info = JSON.parse(await px.ok(['apps:info', 'victim', '--json']));
    expect(info.isolation).toBe('sandbox');
    expect(info.uid).toBeGreaterThanOrEqual(20000);
    expect(info.limits).toEqual({ memoryMb: 512, pids: 256, nofile: 4096 });
    const text = await px.ok(['apps:info', 'victim']);
    expect(text).toMatch(/uid:\s+\d+/);
    expect(text).toContain('memory=512M pids=256 nofile=4096');
  });

  it('a hostile build script can read nothing of the victim or the platform', async () => {
    const push = await deploy('hostile', {
      'package.json': JSON.stringify({ name: 'hostile', scripts: { start: 'node server.js', postinstall: 'node evil-build.js' }, dependencies: { helper: 'file:./helper' } }),
      'helper/package.json': JSON.stringify({ name: 'helper', version: '1.0.0' }),
      'probes.js': PROBES,
      'evil-build.js': `console.log('EVIL ' + JSON.stringify(require('./probes.js')({ data: ${JSON.stringify(px.data)}, victimPid: ${victimPid} })));`,
      'server.js': HOSTILE_SERVER,
    });
    const line = push.stderr.split('\n').find((l) => l.includes('EVIL '));
    expect(line, push.stderr).toBeDefined();
    const r = JSON.parse(line!.slice(line!.indexOf('EVIL ') + 5));
    for (const k of ['victimCode', 'victimEnv', 'killVictim', 'state', 'hostKey', 'root', 'writeUsr', 'writeEtc']) {
      expect(r[k], k).not.toBe('OK');
    }
    expect(r.uid).not.toBe(0);
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('victim ok');
  });

  it('the hostile app cannot read, see or signal the victim, and the victim keeps serving', async () => {
    const t = encodeURIComponent(JSON.stringify({ data: px.data, victimPid }));
    const r = JSON.parse((await get(px.info.httpPort, 'hostile.localhost', `/attack?t=${t}`)).body);
    for (const k of ['victimCode', 'victimEnv', 'killVictim', 'state', 'hostKey', 'root', 'writeUsr', 'writeEtc']) {
      expect(r[k], k).not.toBe('OK');
    }
    expect(r.cwd).toBe('/app');
    expect(r.home).toBe('/app');
    expect(r.processes).toBeLessThan(5); // its own pid namespace: itself and bwrap's init
    expect(r.envKeys.filter((k: string) => !['DYNO', 'HOME', 'LANG', 'NODE_ENV', 'PATH', 'PORT', 'PWD'].includes(k))).toEqual([]);
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('victim ok');
  });

  it('a fork bomb and a memory hog end in the hostile app\'s own crash and restart; nothing else notices', async () => {
    await px.ok(['resources:set', 'hostile', 'memory=64M', 'pids=40']);
    expect(JSON.parse(await px.ok(['apps:info', 'hostile', '--json'])).limits).toMatchObject({ memoryMb: 64, pids: 40 });
    const victimTraffic = load(px.info.httpPort, 'victim.localhost', 2);

    await get(px.info.httpPort, 'hostile.localhost', '/forkbomb');
    const afterBomb = await waitFor(async () => {
      const [p] = JSON.parse(await px.ok(['ps', 'hostile', '--json']));
      return p.restarts >= 1 && p.state === 'up' ? p : undefined;
    }, 30_000, 'the fork-bombing app to crash and come back');
    expect(afterBomb.restarts).toBeGreaterThanOrEqual(1);

    await get(px.info.httpPort, 'hostile.localhost', '/hog');
    await waitFor(async () => {
      const [p] = JSON.parse(await px.ok(['ps', 'hostile', '--json']));
      return p.restarts > afterBomb.restarts && p.state === 'up';
    }, 40_000, 'the memory hog to be killed and restarted');
    await victimTraffic.stop();

    expect(victimTraffic.failures).toEqual([]);
    expect(victimTraffic.ok).toBeGreaterThan(0);
    expect((await get(px.info.httpPort, 'hostile.localhost')).body).toBe('hostile');
    const logs = await px.ok(['logs', 'hostile', '-n', '200', '--source', 'platform']);
    expect(logs).toMatch(/process (exited with code|was killed by)/);
    // The victim never restarted.
    expect(JSON.parse(await px.ok(['ps', 'victim', '--json']))[0].restarts).toBe(0);
  });
});

/** The cpu cgroup of a process and that group's weight (cpu.shares), as the host sees them. */
function cpuGroup(pid: number): { path: string; shares: number } {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('cpu'));
  const where = line!.split(':')[2]!;
  return { path: where, shares: Number(fs.readFileSync(path.join('/sys/fs/cgroup/cpu', where, 'cpu.shares'), 'utf8')) };
}

/** Pids of live processes with this comm (and, when given, this uid or a command line containing `arg`). */
function processes(comm: string, o: { uid?: number; arg?: string } = {}): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      // The kernel keeps 15 characters of a command's name.
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm.slice(0, 15)) return false;
      if (o.uid !== undefined && !new RegExp(`^Uid:\\s+${o.uid}\\s`, 'm').test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))) return false;
      return o.arg === undefined || fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(o.arg);
    } catch {
      return false; // exited meanwhile
    }
  });
}

const hasCpuGroups = fs.existsSync('/sys/fs/cgroup/cpu/cpu.shares');

describe.runIf(isRoot && hasCpuGroups)('deploy priority, as root', () => {
  it('runs git, its hooks and the build at a low CPU weight; the serving release gets the full weight', async () => {
    const token = await px.createApp('niced');
    const uid = JSON.parse(await px.ok(['apps:info', 'niced', '--json'])).uid as number;
    const repo = await AppRepo.create(nodeApp('niced ok', {
      'package.json': JSON.stringify({ name: 'niced', scripts: { build: 'sleep 4', start: 'node server.js' } }),
    }));
    repos.push(repo);
    const pushing = repo.push(px.gitUrl('niced', token));
    const [build, receivePack] = await waitFor(async () => {
      const sleeper = processes('sleep', { uid })[0];
      const git = processes('git-receive-pack', { arg: path.join(px.data, 'apps', 'niced') })[0];
      return sleeper && git ? [sleeper, git] : undefined;
    }, 30_000, 'the build step to run');
    const buildGroup = cpuGroup(build);
    expect(buildGroup.path).toContain('.niced.build.');
    expect(buildGroup.shares).toBe(128);
    // The hook that waits for the build runs under receive-pack, in the deploy group.
    const gitGroup = cpuGroup(receivePack);
    expect(gitGroup.path).toMatch(/-deploy$/);
    expect(gitGroup.shares).toBe(128);
    const push = await pushing;
    expect(push.code, push.stderr).toBe(0);

    const web = JSON.parse(await px.ok(['ps', 'niced', '--json']))[0].pid as number;
    const webGroup = cpuGroup(web);
    expect(webGroup.path).toContain('.niced.web.');
    expect(webGroup.shares).toBe(1024);
  });
});

describe('without root', () => {
  it('the server warns once and apps:info reports isolation: none', async () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'pxn-'));
    fs.chmodSync(data, 0o777);
    const asNobody = isRoot ? ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--'] : [];
    const child = spawn(asNobody[0] ?? process.execPath, [...asNobody.slice(1), ...(isRoot ? [process.execPath] : []), BIN, 'server',
      '--data', path.join(data, 'd'), '--host', '127.0.0.1', '--http-port', '0', '--git-http-port', '0', '--ssh-port', 'off', '--dnode-port', 'off', '--dashboard-port', 'off', '--stop-apps'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: data } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      await waitFor(async () => output.includes('ready:'), 30_000, `the server to start: ${output}`);
      expect(output.match(/WARNING: apps are NOT isolated/g)).toHaveLength(1);
      const cli = (args: string[]) => run(asNobody[0] ?? process.execPath, [...asNobody.slice(1), ...(isRoot ? [process.execPath] : []), BIN, '--data', path.join(data, 'd'), ...args]);
      expect((await cli(['apps:create', 'plain'])).code).toBe(0);
      const info = await cli(['apps:info', 'plain']);
      expect(info.stdout).toMatch(/isolation:\s+none/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(data, { recursive: true, force: true });
    }
  });
});
