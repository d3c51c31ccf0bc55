// The sandbox layer on its own, with real processes and no server: a hostile and a
// victim app in a temp data folder, spawned through SandboxedApprunner exactly as
// Maestro spawns them. As root (here and in CI) every confinement is checked; without
// root only the 'none' path can be, and is.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation } from '../src/apprunner/isolation.js';
import { SandboxedApprunner } from '../src/apprunner/sandboxed-apprunner.js';
import type { RunSpec } from '../src/apprunner/types.js';
import { DataPaths } from '../src/state/paths.js';
import type { Limits } from '../src/state/types.js';

const isRoot = process.getuid?.() === 0;
// Far above the uids the platform hands out in other tests' data folders, so two files
// running at once never share a user.
const VICTIM_UID = 29_101;
const HOSTILE_UID = 29_102;

// Each probe reports the error code it met, or 'OK' when it got through.
const PROBES = `
const fs = require('fs');
const os = require('os');
function probe(fn) { try { const r = fn(); return r === undefined ? 'OK' : r; } catch (e) { return e.code || e.message; } }
const t = JSON.parse(process.argv[2]);
const status = (pid) => fs.readFileSync('/proc/' + pid + '/status', 'utf8');
const field = (text, name) => (text.match(new RegExp('^' + name + ':\\\\s*(.*)$', 'm')) || [])[1];
console.log(JSON.stringify({
  victimFileByHostPath: probe(() => { fs.readFileSync(t.victimFile); }),
  victimEnv: probe(() => { fs.readFileSync('/proc/' + t.victimPid + '/environ'); }),
  killVictim: probe(() => { process.kill(t.victimPid, 'SIGKILL'); }),
  stateFile: probe(() => { fs.readFileSync(t.stateFile); }),
  tokenFile: probe(() => { fs.readFileSync(t.tokenFile); }),
  dataDir: probe(() => { fs.readdirSync(t.dataDir); }),
  root: probe(() => { fs.readdirSync('/root'); }),
  sys: probe(() => { fs.readdirSync('/sys/fs/cgroup'); }),
  writeUsr: probe(() => { fs.writeFileSync('/usr/pwned', 'x'); }),
  writeEtc: probe(() => { fs.writeFileSync('/etc/pwned', 'x'); }),
  writeRoot: probe(() => { fs.writeFileSync('/pwned', 'x'); }),
  writeTmp: probe(() => { fs.writeFileSync('/tmp/ok', 'x'); }),
  writeShm: probe(() => { fs.writeFileSync('/dev/shm/ok', 'x'); }),
  writeApp: probe(() => { fs.writeFileSync('/app/ok', 'x'); }),
  killInit: probe(() => { process.kill(1, 'SIGKILL'); }),
  userns: probe(() => { const r = require('child_process').spawnSync('unshare', ['-Ur', 'true'], { encoding: 'utf8' }); return r.status === 0 ? 'OK' : r.stderr.trim(); }),
  pids: fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).map(Number),
  initUid: field(status(1), 'Uid'),
  initCaps: field(status(1), 'CapEff'),
  ownCaps: field(status('self'), 'CapEff'),
  ownBounding: field(status('self'), 'CapBnd'),
  noNewPrivs: field(status('self'), 'NoNewPrivs'),
  user: probe(() => os.userInfo().username),
  uid: process.getuid(),
  gid: process.getgid(),
  groups: process.getgroups(),
  cwd: process.cwd(),
  env: process.env,
}));
`;

// Spawns children of `sleep` until refused, for at most 4 s, then reports.
const FORK_BOMB = `
const { spawn } = require('child_process');
let ok = 0, refused = 0;
const started = Date.now();
function round() {
  for (let i = 0; i < 50; i++) {
    try {
      const c = spawn('sleep', ['30'], { stdio: 'ignore' });
      c.on('error', () => {});
      if (c.pid) ok++; else refused++;
    } catch { refused++; }
  }
  if (ok + refused < 10000 && Date.now() - started < 4000) setImmediate(round);
  else { console.log(JSON.stringify({ ok, refused })); process.exit(0); }
}
round();
`;

const HOG = `
const keep = [];
for (let mb = 0; mb < 4096; mb += 8) { keep.push(Buffer.alloc(8 * 1024 * 1024, 1)); if (mb % 64 === 0) console.log('held ' + mb + ' MB'); }
console.log('survived');
`;

const GRACEFUL = `
process.on('SIGTERM', () => { console.log('got SIGTERM'); setTimeout(() => process.exit(0), 100); });
console.log('ready');
setInterval(() => {}, 1000);
`;

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): { out: () => string; done: Promise<Finished> } {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const done = new Promise<Finished>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { out: () => stdout, done };
}

async function until<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The host pid of the process below `pid` that runs `program` (its argv[0]'s last part).
 * Not its comm: Node 24 names its main thread, and so the process, "MainThread".
 */
function descendantNamed(pid: number, program: string): number | undefined {
  const children = (p: number) =>
    fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    let kids: number[] = [];
    try {
      kids = children(p);
    } catch {
      continue;
    }
    for (const k of kids) {
      try {
        if (path.basename(fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0')[0]!) === program) return k;
      } catch {
        /* gone */
      }
      queue.push(k);
    }
  }
  return undefined;
}

/** The cgroup folders (host paths) a live process sits in, per v1 controller. */
function cgroupDirs(pid: number): Record<string, string> {
  const dirs: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, controllers, where] = line.split(':');
    for (const c of controllers!.split(',')) if (c) dirs[c] = path.join('/sys/fs/cgroup', c, where!);
  }
  return dirs;
}

describe.runIf(isRoot)('the sandbox runner, as root', () => {
  let tmp: string;
  let paths: DataPaths;
  let runner: SandboxedApprunner;
  const live: ChildProcess[] = [];

  function spec(app: string, uid: number, command: string[], limits: Partial<Limits> = {}, env: Record<string, string> = {}): RunSpec {
    return {
      app, kind: 'web', command, releaseDir: paths.build(app, 'b1'), uid,
      env: { PORT: '5999', ...env }, limits: { memoryMb: 128, pids: 64, nofile: 256, ...limits },
    };
  }

  function start(s: RunSpec) {
    const child = runner.spawn(s);
    live.push(child);
    return { child, ...collect(child) };
  }

  async function release(app: string, uid: number, files: Record<string, string>) {
    const dir = paths.build(app, 'b1');
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    await runner.claim(dir, uid);
    return dir;
  }

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxsb-'));
    paths = new DataPaths(path.join(tmp, 'data'));
    fs.mkdirSync(paths.root, { recursive: true, mode: 0o700 });
    fs.writeFileSync(paths.stateFile, '{"secret":"state"}', { mode: 0o600 });
    fs.writeFileSync(path.join(paths.root, 'token'), 'deploy-token', { mode: 0o600 });
    runner = new SandboxedApprunner(paths.root);
    await release('victim', VICTIM_UID, { 'secret.txt': 'victim secret', 'victim.js': 'setInterval(() => {}, 1000);' });
    await release('hostile', HOSTILE_UID, {
      'probes.js': PROBES, 'bomb.js': FORK_BOMB, 'hog.js': HOG, 'graceful.js': GRACEFUL,
    });
  });

  afterAll(async () => {
    const running = live.filter((c) => c.exitCode === null && c.signalCode === null && c.pid);
    const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
    for (const c of running) runner.signal(c.pid!, 'SIGKILL');
    await Promise.all(exited);
    // As the server does when it stops: no cgroup of this runner stays behind.
    runner.close();
    const scope = `platformx-${createHash('sha256').update(paths.root).digest('hex').slice(0, 8)}`;
    const leftovers = () => ['cpu', 'pids'].flatMap((c) => {
      try {
        return fs.readdirSync(path.join('/sys/fs/cgroup', c)).filter((n) => n.startsWith(scope));
      } catch {
        return [];
      }
    });
    for (let i = 0; i < 50 && leftovers().length; i++) await new Promise((r) => setTimeout(r, 100));
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(leftovers()).toEqual([]);
  });

  it("a hostile app reaches nothing of the victim's or the platform's, sees only its own processes, and has no privileges", async () => {
    const victim = start(spec('victim', VICTIM_UID, ['node', 'victim.js'], {}, { DATABASE_URL: 'postgres://victim-secret' }));
    const victimNode = await until('the victim to run', () => descendantNamed(victim.child.pid!, 'node'), 30_000);

    const targets = {
      victimFile: path.join(paths.build('victim', 'b1'), 'secret.txt'), victimPid: victimNode,
      stateFile: paths.stateFile, tokenFile: path.join(paths.root, 'token'), dataDir: paths.root,
    };
    const hostile = start(spec('hostile', HOSTILE_UID, ['node', 'probes.js', JSON.stringify(targets)], {}, { SECRET_OF_HOSTILE: 'own' }));
    const done = await hostile.done;
    expect(done.code, done.stderr).toBe(0);
    const r = JSON.parse(done.stdout);

    // Nothing of the host's folders is even there; were it mounted, its modes would stop it (below).
    for (const k of ['victimFileByHostPath', 'stateFile', 'tokenFile', 'dataDir', 'root', 'sys', 'victimEnv']) expect(r[k], k).toBe('ENOENT');
    expect(r.killVictim).toBe('ESRCH'); // the victim's host pid does not exist in the hostile's pid namespace
    for (const k of ['writeUsr', 'writeEtc', 'writeRoot']) expect(['EROFS', 'EACCES'], k).toContain(r[k]);
    for (const k of ['writeTmp', 'writeShm', 'writeApp']) expect(r[k], k).toBe('OK');

    // Own pid namespace: bubblewrap's reaper (pid 1, root but with no capabilities, which it
    // cannot signal), then the app.
    expect(r.pids.sort()).toEqual([1, 2]);
    expect(r.killInit).toBe('EPERM');
    expect(r.initUid.split(/\s+/)[0]).toBe('0');
    expect(r.initCaps).toBe('0000000000000000');
    expect([r.uid, r.gid, r.groups]).toEqual([HOSTILE_UID, HOSTILE_UID, [HOSTILE_UID]]);
    expect(r.ownCaps).toBe('0000000000000000');
    expect(r.ownBounding).toBe('0000000000000000');
    expect(r.noNewPrivs).toBe('1');
    // No user namespaces (the seccomp filter): inside one it would hold every capability.
    expect(r.userns).toMatch(/Operation not permitted/);
    expect(r.user).toBe('app');

    expect(r.cwd).toBe('/app');
    expect(r.env.HOME).toBe('/app');
    // Only what the app was given plus the fixed few; bwrap adds PWD for --chdir.
    expect(Object.keys(r.env).sort()).toEqual(['HOME', 'LANG', 'NODE_ENV', 'PATH', 'PORT', 'PWD', 'SECRET_OF_HOSTILE']);

    // The victim is untouched, and its files are its own alone on the host.
    expect(victim.child.exitCode).toBeNull();
    const st = fs.statSync(paths.build('victim', 'b1'));
    expect([st.uid, st.mode & 0o777]).toEqual([VICTIM_UID, 0o700]);
    expect(fs.statSync(path.join(paths.build('victim', 'b1'), 'secret.txt')).uid).toBe(VICTIM_UID);
    runner.signal(victim.child.pid!, 'SIGKILL');
    await victim.done;
  });

  it('a fork bomb meets its pids limit; the machine can still start processes', async () => {
    const bomb = start(spec('hostile', HOSTILE_UID, ['node', 'bomb.js'], { pids: 40 }));
    const done = await bomb.done;
    expect(done.code, done.stderr).toBe(0);
    const { ok, refused } = JSON.parse(done.stdout);
    expect(refused).toBeGreaterThan(0);
    expect(ok).toBeLessThan(40);
    // Its sleeps died with its pid namespace; the host is fine.
    const after = start(spec('victim', VICTIM_UID, ['node', '-e', 'console.log("still fine")']));
    expect((await after.done).stdout.trim()).toBe('still fine');
  });

  it('a memory hog is killed by the OOM killer at its limit, long before it takes the machine', async () => {
    const hog = start(spec('hostile', HOSTILE_UID, ['node', 'hog.js'], { memoryMb: 64 }));
    const pid = hog.child.pid!;
    const memDir = (await until('the hog to join its cgroup', () => {
      const d = cgroupDirs(pid).memory;
      return d?.includes('platformx-') ? d : undefined;
    }));
    expect(fs.readFileSync(path.join(memDir, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 * 1024 * 1024));
    const done = await hog.done;
    expect(done.stdout).not.toContain('survived');
    expect(done.stdout).not.toContain('held 128 MB');
    // bwrap reports the app's SIGKILL as 128 + 9.
    expect(done.code).toBe(137);
  });

  it('the process gets its open-files limit; its cgroups are removed when it exits', async () => {
    const p = start(spec('hostile', HOSTILE_UID, ['sh', '-c', 'ulimit -n; sleep 30'], { nofile: 321, pids: 33 }));
    await until('ulimit to print', () => (p.out().trim() ? true : undefined));
    expect(p.out().trim()).toBe('321');
    const dirs = cgroupDirs(p.child.pid!);
    expect(fs.readFileSync(path.join(dirs.pids!, 'pids.max'), 'utf8').trim()).toBe('33');
    runner.signal(p.child.pid!, 'SIGKILL');
    await p.done;
    await until('the cgroups to go', () => (fs.existsSync(dirs.memory!) || fs.existsSync(dirs.pids!) ? undefined : true), 5000);
  });

  it('a graceful signal reaches the app inside the sandbox, which exits on its own terms', async () => {
    const p = start(spec('hostile', HOSTILE_UID, ['node', 'graceful.js']));
    await until('the app to be ready', () => (p.out().includes('ready') ? true : undefined));
    runner.signal(p.child.pid!, 'SIGTERM');
    const done = await p.done;
    expect(done.stdout).toContain('got SIGTERM');
    expect(done.code).toBe(0);
  });
});

describe.runIf(!isRoot)('the sandbox runner, without root', () => {
  it('reports isolation none and why', () => {
    const check = detectIsolation();
    expect(check.isolation).toBe('none');
    expect(check.reason).toMatch(/not running as root/);
  });
});
